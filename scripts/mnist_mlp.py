"""The classic Keras MNIST multilayer perceptron, with its knobs as flagrun flags.

    python scripts/mnist_mlp.py --dropout1 0.3            # by hand
    flagrun train scripts/mnist_mlp.py dropout1=0.3       # one recorded run
    flagrun tune --config scripts/tuning.yml              # Cloud ML style tuning

``--dataset fashion_mnist`` trains on a local Fashion-MNIST copy (see
datasets.py); ``--samples N`` trains on the first N examples only.
"""

import sys

from datasets import DatasetNotFound, load_fashion_mnist, load_mnist

from flagrun import flag_integer, flag_numeric, flag_string, flags

FLAGS = flags(
    flag_integer("dense_units1", 128, "units in the first dense layer"),
    flag_numeric("dropout1", 0.4, "dropout rate after the first dense layer"),
    flag_integer("dense_units2", 128, "units in the second dense layer"),
    flag_numeric("dropout2", 0.3, "dropout rate after the second dense layer"),
    flag_integer("epochs", 30, "training epochs"),
    flag_integer("batch_size", 128, "examples per gradient step"),
    flag_string("dataset", "mnist", "mnist or fashion_mnist"),
    flag_integer("samples", 0, "train and test on the first N examples only (0 = all)"),
)

LOADERS = {"mnist": load_mnist, "fashion_mnist": load_fashion_mnist}
if FLAGS.dataset not in LOADERS:
    sys.exit(f"mnist_mlp.py: --dataset {FLAGS.dataset!r} is not one of {', '.join(LOADERS)}")

try:
    (x_train, y_train), (x_test, y_test) = LOADERS[FLAGS.dataset]()
except DatasetNotFound as error:
    sys.exit(f"mnist_mlp.py: {error}")

# TensorFlow only now: --help, bad flags and a missing dataset have answered above, fast.
import keras  # noqa: E402

if FLAGS.samples > 0:
    x_train, y_train = x_train[: FLAGS.samples], y_train[: FLAGS.samples]
    x_test, y_test = x_test[: FLAGS.samples], y_test[: FLAGS.samples]

x_train = x_train.reshape(len(x_train), 784).astype("float32") / 255
x_test = x_test.reshape(len(x_test), 784).astype("float32") / 255
y_train = keras.utils.to_categorical(y_train, 10)
y_test = keras.utils.to_categorical(y_test, 10)

model = keras.Sequential(
    [
        keras.Input(shape=(784,)),
        keras.layers.Dense(FLAGS.dense_units1, activation="relu"),
        keras.layers.Dropout(FLAGS.dropout1),
        keras.layers.Dense(FLAGS.dense_units2, activation="relu"),
        keras.layers.Dropout(FLAGS.dropout2),
        keras.layers.Dense(10, activation="softmax"),
    ]
)
model.summary()
model.compile(
    loss="categorical_crossentropy",
    optimizer=keras.optimizers.RMSprop(),
    metrics=["accuracy"],
)

# flagrun adds a TensorBoard callback writing to <run dir>/logs by itself.
model.fit(
    x_train,
    y_train,
    batch_size=FLAGS.batch_size,
    epochs=FLAGS.epochs,
    verbose=2,
    validation_split=0.2,
)

loss, accuracy = model.evaluate(x_test, y_test, verbose=0)
print(f"Test loss: {loss:.4f}")
print(f"Test accuracy: {accuracy:.4f}")
