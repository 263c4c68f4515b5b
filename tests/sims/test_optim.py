"""sims.optim's optimisers do not import torch._dynamo, and take exactly torch's steps."""

import subprocess
import sys
import textwrap
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

SCRIPT = """
import sys
import torch
from sims import optim

def trajectory(make, steps=6):
    torch.manual_seed(0)
    p = torch.nn.Parameter(torch.randn(3, 4, dtype=torch.float64))
    target = torch.randn(3, 4, dtype=torch.float64)
    opt = make([p])
    for step in range(steps):
        opt.zero_grad()
        ((p - target) ** 2 * torch.arange(1.0, 5.0, dtype=torch.float64)).sum().backward()
        opt.step()
        if step == 2:  # a checkpoint round trip on the way
            opt.load_state_dict(opt.state_dict())
    return p.detach().clone()

ours = {
    "sgd": trajectory(lambda ps: optim.make("sgd", ps, [0.05], [0.1], momentum=0.9)),
    "adamw": trajectory(lambda ps: optim.make("adamw", ps, [0.05], [0.1])),
    "ensemble-sgd": trajectory(lambda ps: optim.make("sgd", ps, [0.05, 0.04, 0.03], [0.1] * 3, momentum=0.9)),
    "ensemble-adamw": trajectory(lambda ps: optim.make("adamw", ps, [0.05, 0.04, 0.03], [0.1] * 3)),
    "rmsprop": trajectory(lambda ps: optim.ScalarRMSprop(ps, lr=0.05)),
}
print("dynamo imported:", "torch._dynamo" in sys.modules)
torch_sgd = trajectory(lambda ps: torch.optim.SGD(ps, lr=0.05, momentum=0.9, weight_decay=0.1))
torch_adamw = trajectory(lambda ps: torch.optim.AdamW(ps, lr=0.05, weight_decay=0.1))
assert "torch._dynamo" in sys.modules  # torch's own classes import it: the check above can fail
print("sgd equal:", torch.equal(ours["sgd"], torch_sgd), "adamw equal:", torch.equal(ours["adamw"], torch_adamw))
again = trajectory(lambda ps: optim.make("sgd", ps, [0.05], [0.1], momentum=0.9))  # torch's wrapped path now
print("with dynamo loaded equal:", torch.equal(again, torch_sgd))
"""


def test_optimisers_skip_the_dynamo_import_and_match_torch():
    done = subprocess.run([sys.executable, "-c", textwrap.dedent(SCRIPT)], cwd=ROOT, capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split("\n")[:3] == ["dynamo imported: False", "sgd equal: True adamw equal: True",
                                           "with dynamo loaded equal: True"]
