"""output_shape keeps the batch dimension."""
import torch
import torch.nn as nn


def profile_model(model, input_size):
    rows, handles = [], []

    def hook(module, inputs, output, name):
        n = output[0].numel()
        if isinstance(module, nn.Conv2d):
            kh, kw = module.kernel_size
            macs = n * (module.in_channels // module.groups) * kh * kw
        elif isinstance(module, nn.Linear):
            macs = n * module.in_features
        else:
            macs = 0
        rows.append({"name": name, "output_shape": tuple(output.shape),
                     "params": sum(p.numel() for p in module.parameters(recurse=False)),
                     "macs": macs, "activations": n})

    for name, module in model.named_modules():
        if not list(module.children()):
            handles.append(module.register_forward_hook(lambda m, i, o, name=name: hook(m, i, o, name)))
    model.eval()
    with torch.no_grad():
        model(torch.zeros(1, *input_size))
    for h in handles:
        h.remove()
    return rows
