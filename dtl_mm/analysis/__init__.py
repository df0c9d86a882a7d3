"""What a training step of a config needs, measured on any device: its
saved tensors by part of the model, its peak of live tensors, and the GPU
peak predicted from them (``dtl-mm memory``)."""
