import argparse

parser = argparse.ArgumentParser()
parser.add_argument("--seed", type=int, default=1)
sub = parser.add_subparsers(dest="command")
train = sub.add_parser("train")
train.add_argument("--epochs", type=int, default=3)
args = parser.parse_args()
