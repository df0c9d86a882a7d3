"""Launch checks: the model config against its data and backbone, and the
data files themselves, before a run starts."""
