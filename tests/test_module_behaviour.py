"""What the module contract sees of a module's behaviour (``autograder.cases.contract``), on
torchvision's own blocks and small variants of them, through the kernel's ``module`` procedure:

- training mode: passes with torch's generator reseeded alike in the kernel and the judge (the
  same dropout masks), then the buffers after them: BatchNorm's momentum and eps, dropout's rate;
- backward: float64, through two blocks in a row; an input changed in place, a detached branch;
- edge inputs: a batch of one;
- the kernel's request fields themselves (``reseed``, ``stack``, ``backward``, ``return_inputs``,
  ``return_state="flat buffers"``, ``module_dtype`` with ``keep_device``).
"""
from __future__ import annotations

import contextlib
import io
import tempfile
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F
from torchvision.models.resnet import BasicBlock

import gradekit
from autograder.cases import Draw, spec
from autograder.cases.contract import TWIN_GROUPS, contract, twin_target, unflatten
from autograder.judge import Judge
from autograder.problem import Group, Problem
from gradekit.capture import run_request
from gradekit.codec import Reader, Writer

pytestmark = pytest.mark.usefixtures("one_thread")


class Block(BasicBlock):
    """torchvision's BasicBlock with the course's signature (identity shortcut: 4 -> 4, stride 1)."""

    def __init__(self, channels=4):
        super().__init__(channels, channels)


class Contract(Problem):
    name = "Block"
    groups = tuple(Group(g, f"hint for {g}") for g in TWIN_GROUPS)

    def cases(self, draw):
        twin = spec("torchvision.models.resnet.BasicBlock", 4, 4)
        return contract(self, twin_target(twin), (4,), draw.normal((2, 4, 7, 9), np.float32), draw,
                        train_x=draw.normal((3, 4, 7, 9), np.float32))


def grade(cls, seed: int = 3) -> tuple[dict[str, bool], str]:
    with tempfile.TemporaryDirectory() as tmp:
        judge = Judge({"Block": Contract()}, seed, Path(tmp), strict=True)
        judge.prepare()
        with contextlib.redirect_stdout(io.StringIO()):
            gradekit.capture("Block", {"Block": cls}, root=tmp)
        verdict = judge.collect(None)["Block"]
    return verdict.groups, "\n".join(verdict.lines)


def test_the_twin_passes_every_group_and_backward_runs_through_two_blocks():
    groups, text = grade(Block)
    assert all(groups.values()) and set(groups) == set(TWIN_GROUPS), text
    assert any("two Block(4) in a row" in c.label for c in Contract().cases(Draw(np.random.default_rng(3))))


def test_batchnorm_momentum_shows_in_the_buffers_after_training_passes():
    class SlowStatistics(Block):
        def __init__(self, channels=4):
            super().__init__(channels)
            self.bn1.momentum = 0.01

    groups, text = grade(SlowStatistics)
    assert not groups["training mode"] and groups["torchvision weights"], text
    assert "bn1.running_mean" in text


def test_dropout_draws_the_judges_masks_when_the_generator_is_reseeded():
    """The kernel's passes (float32) and the target's (float64) agree with dropout active; another rate
    does not."""
    def dropped(p):
        return lambda channels: nn.Sequential(Block(channels), nn.Dropout(p))

    target = twin_target(spec("torch.nn.Sequential", spec("torchvision.models.resnet.BasicBlock", 4, 4),
                              spec("torch.nn.Dropout", 0.3)))
    state = target.random_state(1)
    xs = [np.random.default_rng(i).standard_normal((2, 4, 5, 6)).astype(np.float32) for i in range(2)]
    expected = target.run(state, xs, True, reseed=11).outputs
    for p, agree in ((0.3, True), (0.5, False)):
        request = {"proc": "module", "cls": "Block", "args": [4], "kwargs": {}, "inputs": xs, "train": True,
                   "state": state, "reseed": 11}
        record, _ = _run(request, {"Block": dropped(p)})
        errors = [float(np.max(np.abs(o - e.numpy()))) for o, e in zip(record["outputs"], expected)]
        assert (max(errors) < 1e-4) == agree, (p, errors)


def test_an_input_changed_in_place_and_a_detached_branch_fail_backward_only():
    class AddsIntoInput(Block):
        def forward(self, x):
            out = self.bn2(self.conv2(self.relu(self.bn1(self.conv1(x)))))
            x += out
            return self.relu(x)

    class Detached(Block):
        def forward(self, x):
            out = self.bn2(self.conv2(self.relu(self.bn1(self.conv1(x)))))
            return self.relu(out.detach() + x)

    for cls, text in ((AddsIntoInput, "changed its input"), (Detached, "the gradient for")):
        groups, message = grade(cls)
        assert not groups["backward"] and groups["torchvision weights"] and groups["training mode"], message
        assert text in message


def test_a_squeezed_output_fails_on_a_batch_of_one():
    class Squeezed(Block):
        def forward(self, x):
            return super().forward(x).squeeze(0) if x.shape[0] == 1 else super().forward(x)

    groups, text = grade(Squeezed)
    assert not groups["torchvision weights"] and "(1, 4, 7, 9)" in text, text


def _run(request: dict, namespace: dict) -> tuple[dict, Reader]:
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        writer = Writer(folder / "in", prefix="r_")
        (folder / "in").mkdir()
        encoded = writer.encode(request)
        record = run_request(encoded, namespace, folder / "in", folder / "out", prefix="c_")
        reader = Reader(folder / "out", as_torch=False)
        return reader.decode(record), reader


def test_the_kernel_runs_stacked_copies_backward_and_returns_flat_buffers():
    torch.manual_seed(0)
    state = {k: v.numpy() for k, v in Block().state_dict().items()}
    x = np.random.default_rng(0).standard_normal((2, 4, 5, 6))
    g = np.random.default_rng(1).standard_normal((2, 4, 5, 6))
    request = {"proc": "module", "cls": "Block", "args": [4], "kwargs": {}, "inputs": [x], "train": True,
               "state": state, "stack": True, "double": True, "reseed": 7, "return_inputs": True,
               "backward": {"grad_outputs": [g], "params": True}, "return_state": "flat buffers"}
    record, _ = _run(request, {"Block": Block})
    assert record["status"] == "ok", record
    assert np.array_equal(record["args_after"]["inputs"][0], x)
    grads = record["grads"][0]
    assert grads["input"].shape == x.shape and grads["input"].dtype == np.float64
    assert {"0.conv1.weight", "1.conv1.weight"} <= set(grads["params"])
    buffers = unflatten(record["state_after"])
    assert set(buffers) == {f"{i}.{b}.{k}" for i in (0, 1) for b in ("bn1", "bn2")
                            for k in ("running_mean", "running_var", "num_batches_tracked")}
    assert buffers["1.bn2.num_batches_tracked"] == 1


def test_module_arguments_take_the_requested_dtype_and_stay_where_the_function_built_them():
    def wrap(layer, in_shape):  # a function returning a module, like convolutionalize
        return nn.Sequential(layer)

    layer = spec("torch.nn.Linear", 3, 2)
    request = {"proc": "module", "cls": "wrap", "args": [layer, [3]], "kwargs": {}, "inputs": [np.ones((1, 3))],
               "module_dtype": "float64", "keep_device": True}
    record, _ = _run(request, {"wrap": wrap})
    assert record["status"] == "ok" and record["outputs"][0].dtype == np.float64, record
