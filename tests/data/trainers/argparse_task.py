"""An argparse trainer as Cloud ML samples write them; it would train after parsing."""
import argparse
import os

parser = argparse.ArgumentParser()
parser.add_argument("--job-dir", required=True, help="where to write the model")
parser.add_argument("--train-files", nargs="+", required=True)
parser.add_argument("--first-layer-size", type=int, default=100)
parser.add_argument("--learning-rate", "--lr", type=float, default=0.01)
parser.add_argument("--optimizer", choices=["adam", "sgd"], default="adam")
parser.add_argument("--verbose", action="store_true")
parser.add_argument("-q", type=int, default=0)
args, unknown = parser.parse_known_args()

with open(os.path.join(os.environ["MARKER_DIR"], "trained"), "w") as marker:
    marker.write("the training ran")
