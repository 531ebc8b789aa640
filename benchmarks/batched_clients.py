"""Many small clients' local training one after another (``LocalTrainer.train``) against
all at once (``fl/batched.py``'s ``train_many``): seconds per round of K clients.

    .venv/bin/python benchmarks/batched_clients.py --clients 300 --images 45 --threads 1 2

Random 16 px images, the small CNN, batch 32, one epoch; client sizes spread around
``--images`` (+-30 %) so last batches differ. Prints the max |dw| between the two as well.
"""

from __future__ import annotations

import argparse
import copy
import time

import torch

from orbitfl.fl.batched import train_many
from orbitfl.fl.config import TrainConfig
from orbitfl.fl.datasets import ImageSet
from orbitfl.fl.models import build_model
from orbitfl.fl.training import LocalTrainer


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=300)
    parser.add_argument("--images", type=int, default=45)
    parser.add_argument("--size", type=int, default=16)
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--chunks", type=int, nargs="+", default=[16, 300])
    parser.add_argument("--augment", action="store_true")
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args()

    torch.manual_seed(0)
    device = torch.device(args.device)
    model = build_model("small-cnn", 10).to(device)
    spread = torch.randint(-args.images * 3 // 10, args.images * 3 // 10 + 1, (args.clients,))
    data = [ImageSet(torch.randn(n, 3, args.size, args.size), torch.randint(0, 10, (n,)))
            for n in (args.images + spread).tolist()]
    start = {k: v.clone() for k, v in model.state_dict().items()}
    config = TrainConfig(epochs=args.epochs, batch_size=32, augment=args.augment)

    def generators():
        return [torch.Generator().manual_seed(1000 + i) for i in range(args.clients)]

    def sync():
        if device.type == "cuda":
            torch.cuda.synchronize()

    print(f"{args.clients} clients x ~{args.images} images ({args.size} px), batch 32, "
          f"{args.epochs} epoch(s), augment={args.augment}, device={device}")
    for threads in args.threads:
        torch.set_num_threads(threads)
        trainer = LocalTrainer(copy.deepcopy(model), config)
        trainer.train(data[0], torch.Generator().manual_seed(0))  # warm-up
        sync()
        began = time.perf_counter()
        sequential = []
        for d, g in zip(data, generators()):
            trainer.model.load_state_dict(start)
            trainer.train(d, g)
            sequential.append({k: v.clone() for k, v in trainer.model.state_dict().items()})
        sync()
        seq_s = time.perf_counter() - began
        print(f"threads={threads} sequential {seq_s:7.2f} s")
        for chunk in args.chunks:
            train_many(model, [start] * 2, data[:2], generators()[:2], config)  # warm-up
            sync()
            began = time.perf_counter()
            batched, _ = train_many(model, [start] * args.clients, data, generators(), config,
                                    chunk=chunk)
            sync()
            bat_s = time.perf_counter() - began
            dw = max((a[k].float() - b[k].float()).abs().max().item()
                     for a, b in zip(sequential, batched) for k in a)
            print(f"threads={threads} batched chunk={chunk:4d} {bat_s:7.2f} s "
                  f"speed-up x{seq_s / bat_s:.2f}  max|dw| {dw:.1e}")


if __name__ == "__main__":
    main()
