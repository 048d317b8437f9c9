"""One rank of the data-parallel test (tests/test_train.py::test_torchrun_two_gloo_ranks).

Run as ``torchrun --standalone --nproc_per_node=2 tests/ddp_worker.py OUT_DIR``. Each rank uses
its own run cache (OUT_DIR/cache-rank{r}), so the test can see which ranks wrote files, and saves
what the test compares to OUT_DIR/rank{r}.pt.
"""

import os
import sys
from pathlib import Path

import torch

out = Path(sys.argv[1])
rank = int(os.environ["RANK"])
os.environ["DROPOUTLIB_CACHE"] = str(out / f"cache-rank{rank}")

import dropoutlib.data  # noqa: E402
import dropoutlib.train as T  # noqa: E402
from dropoutlib.model import GPTConfig  # noqa: E402

mc = GPTConfig(vocab_size=65, block_size=8, n_embd=16, n_head=2, n_layer=2, dropout=0.5)
tc = T.TrainConfig(
    max_iters=8,
    eval_interval=4,
    eval_iters=3,
    batch_size=4,
    seed=11,
    device="cpu",
    checkpoint_interval=3,
    prompts=("\n",),
    max_new_tokens=5,
)
key = T.run_key(mc, tc, "shakespeare", world_size=2)
x = torch.arange(16).reshape(2, 8)
record = {"checkpoint_seen": False}


def callback(step, model):
    if step == 4:
        # Weights are in sync after every step; a train-mode forward shows this rank's masks.
        # fork_rng keeps the training's dropout stream untouched.
        with torch.random.fork_rng(), torch.no_grad():
            model.train()
            record["train_out"] = model(x)[0]
            model.eval()
            record["eval_out"] = model(x)[0]
            model.train()
    if step == 5:
        record["checkpoint_seen"] = (T.cache_dir() / key / "checkpoint.pt").is_file()


# Record the batches the trainer draws: first the evaluation at step 0 (2 splits x eval_iters
# batches), then the training batch of step 1.
batches = []
_get_batch = dropoutlib.data.get_batch


def recording_get_batch(*args, **kwargs):
    xb, yb = _get_batch(*args, **kwargs)
    batches.append(xb.clone())
    return xb, yb


dropoutlib.data.get_batch = recording_get_batch
_, train_data, val_data = T.batches.corpus_tensors("shakespeare")

result = T.train(mc, tc, "shakespeare", progress=False, callback=callback)
dropoutlib.data.get_batch = _get_batch
record["first_batch"] = batches[2 * tc.eval_iters]
model = result.load_model()
gen = torch.Generator().manual_seed(T.stream_seed(tc.seed, "eval", rank))
own = T.estimate_loss(
    model,
    {"train": train_data, "val": val_data},
    block_size=8,
    batch_size=tc.batch_size,
    eval_iters=tc.eval_iters,
    generator=gen,
)
record["own_val_loss"] = own["val"]
record["weights"] = {k: v.detach().clone() for k, v in model.state_dict().items()}
record["result"] = result.to_json()
torch.save(record, out / f"rank{rank}.pt")
