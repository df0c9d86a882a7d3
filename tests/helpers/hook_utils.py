"""What the guard hooks read of a runner, for testing hooks without one."""
import torch


class FakeRunner:
    """What the guard hooks read of a runner."""

    def __init__(self, work_dir, model):
        self.work_dir, self.model = str(work_dir), model
        self.iter, self.epoch, self.warnings = 0, 0, []
        self.logger = type(
            'L', (), {
                'warning': lambda _, m: self.warnings.append(m),
                'info': lambda _, m: self.warnings.append(m)
            })()

    def step(self, hook, loss):
        hook.after_train_iter(self, 0, outputs=dict(loss=torch.tensor(loss)))
        self.iter += 1
