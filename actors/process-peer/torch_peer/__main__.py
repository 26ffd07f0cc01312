"""`python3 actors/process-peer/torch_peer [peer|pretrain|bench] ...`: the peer (default), its pretraining, or a benchmark run."""
import argparse
import os
import sys

# Run as a directory (python3 path/to/torch_peer): make the package importable by its name.
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from torch_peer.peer import DEFAULT_WEIGHTS  # noqa: E402


def main(argv):
    parser = argparse.ArgumentParser(prog="torch_peer", description=__doc__)
    sub = parser.add_subparsers(dest="command")
    peer = sub.add_parser("peer", help="speak the process wire on stdin/stdout (the default)")
    peer.add_argument("--weights", default=DEFAULT_WEIGHTS)
    peer.add_argument("--name", default="torch-peer")
    peer.add_argument("--judge-temperature", type=float, default=0.25, help="sharpening of the judge distributions sent (1: as they are)")
    peer.add_argument("--bench", help="a benchmark JSONL (pop tiny-bench): adds the evaluate capability")
    peer.add_argument("--threads", type=int, default=1)
    pre = sub.add_parser("pretrain", help="train the shipped weights from a `pop tiny-data` export")
    pre.add_argument("--data", required=True)
    pre.add_argument("--out", required=True)
    pre.add_argument("--steps", type=int)
    pre.add_argument("--seed", type=int)
    pre.add_argument("--bench", help="a benchmark JSONL (pop tiny-bench) to score the result on")
    pre.add_argument("--eval-every", type=int, help="score on --bench every this many steps (diagnostics)")
    pre.add_argument("--threads", type=int, default=1)
    ev = sub.add_parser("bench", help="accuracy of weights on a benchmark JSONL")
    ev.add_argument("--weights", default=DEFAULT_WEIGHTS)
    ev.add_argument("--bench", required=True)
    args = parser.parse_args(argv if argv and argv[0] in ("peer", "pretrain", "bench", "-h", "--help") else ["peer", *argv])
    if args.command == "pretrain":
        from torch_peer import pretrain

        args.steps = args.steps or pretrain.RECIPE["steps"]
        args.seed = pretrain.RECIPE["seed"] if args.seed is None else args.seed
        pretrain.main(args)
    elif args.command == "bench":
        from torch_peer import bench, data, model
        from torch_peer.batch import Encoder

        m, vocab, _ = model.load(args.weights)
        print(bench.evaluate(m, Encoder(vocab), data.load_bench(args.bench)))
    else:
        from torch_peer import peer as wire

        wire.main(args)


main(sys.argv[1:])
