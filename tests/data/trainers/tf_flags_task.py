import tensorflow as tf

tf.compat.v1.flags.DEFINE_integer("batch_size", 64, "batch")
tf.compat.v1.flags.DEFINE_string("data_dir", "/tmp/data", "data")
FLAGS = tf.compat.v1.flags.FLAGS


def main(argv):
    raise SystemExit("the training ran")


if __name__ == "__main__":
    tf.compat.v1.app.run(main)
