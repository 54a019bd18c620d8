"""An honest freeze that keeps the frozen BatchNorm layers in eval mode by giving each of them
its own train method (an attribute of that module, not of the class), which ignores the
mode asked for.

It must keep full marks: the student patches their own model's modules, not torch.
"""
def freeze(model, trainable=("fc",)):
    if isinstance(trainable, str):
        trainable = (trainable,)

    def under(name):
        return any(name == p or name.startswith(p + ".") for p in trainable)

    def stay_in_eval(module):
        def train(mode=True):
            nn.Module.train(module, False)
            return module
        return train

    count = 0
    for name, param in model.named_parameters():
        param.requires_grad_(under(name))
        count += param.numel() if under(name) else 0
    for name, module in model.named_modules():
        if isinstance(module, nn.modules.batchnorm._BatchNorm) and not under(name):
            module.eval()
            module.train = stay_in_eval(module)
    return count
