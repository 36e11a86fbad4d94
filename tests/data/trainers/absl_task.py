from absl import app, flags

flags.DEFINE_integer("hidden_units", 32, "units")
flags.DEFINE_float("learning_rate", 0.1, "rate")
flags.DEFINE_enum("activation", "relu", ["relu", "tanh"], "activation")
flags.DEFINE_boolean("batch_norm", False, "batch norm")
FLAGS = flags.FLAGS


def main(argv):
    raise SystemExit("the training ran")


if __name__ == "__main__":
    app.run(main)
