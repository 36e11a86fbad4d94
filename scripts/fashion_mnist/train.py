"""A fully connected Fashion-MNIST classifier, its depth, width and training knobs as flags.

The model and search space of a hyperopt TPE experiment (100 trials of 50
epochs; best test accuracy 0.853), redone with flagrun:

    flagrun train scripts/fashion_mnist/train.py num_layers=3 optimizer=nadam
    flagrun tune --config scripts/fashion_mnist/tuning.yml

Training uses 50,000 of the 60,000 training images and validates on the other
10,000 (``val_acc``, the tuning objective); the test set is left to evaluate.py.
The trained model is saved as ``model.keras`` in the working directory (the run dir).
"""

import sys

from data import DatasetNotFound, load_fashion_mnist, scaled, train_validation_split

from flagrun import flag_integer, flag_numeric, flag_string, flags

FLAGS = flags(
    flag_integer("batch_size", 64, "examples per gradient step"),
    flag_numeric("learning_rate", 1e-3, "the optimizer's learning rate"),
    flag_numeric("dropout_rate", 0.2, "dropout after every hidden layer"),
    flag_string("activation", "relu", "hidden layers' activation (relu, selu, tanh, ...)"),
    flag_integer("num_layers", 2, "hidden layers"),
    flag_integer("layer_size", 512, "units per hidden layer"),
    flag_string("optimizer", "adam", "adam, adamax, nadam, rmsprop or sgd"),
    flag_integer("epochs", 50, "training epochs"),
    flag_integer("samples", 0, "train and validate on the first N images only (0 = all)"),
    flag_integer("patience", 0, "stop after N epochs without better val accuracy (0 = never)"),
)

OPTIMIZERS = ("adam", "adamax", "nadam", "rmsprop", "sgd")
if FLAGS.optimizer not in OPTIMIZERS:
    sys.exit(f"train.py: --optimizer {FLAGS.optimizer!r} is not one of {', '.join(OPTIMIZERS)}")

try:
    (x_all, y_all), _ = load_fashion_mnist()
except DatasetNotFound as error:
    sys.exit(f"train.py: {error}")

(x_train, y_train), (x_val, y_val) = train_validation_split(x_all, y_all)
if FLAGS.samples > 0:
    x_train, y_train = x_train[: FLAGS.samples], y_train[: FLAGS.samples]
    x_val, y_val = x_val[: FLAGS.samples], y_val[: FLAGS.samples]
x_train, x_val = scaled(x_train), scaled(x_val)

# Keras only now: --help, bad flags and a missing dataset have answered above, fast.
import keras  # noqa: E402

try:
    keras.activations.get(FLAGS.activation)
except ValueError:
    sys.exit(f"train.py: --activation {FLAGS.activation!r} is not a Keras activation")

hidden = []
for _ in range(FLAGS.num_layers):
    hidden += [
        keras.layers.Dense(FLAGS.layer_size, activation=FLAGS.activation),
        keras.layers.Dropout(FLAGS.dropout_rate),
    ]
model = keras.Sequential(
    [keras.Input(shape=(784,)), *hidden, keras.layers.Dense(10, activation="softmax")]
)
model.summary()
optimizer_class = {
    "adam": keras.optimizers.Adam,
    "adamax": keras.optimizers.Adamax,
    "nadam": keras.optimizers.Nadam,
    "rmsprop": keras.optimizers.RMSprop,
    "sgd": keras.optimizers.SGD,
}[FLAGS.optimizer]
model.compile(
    loss="sparse_categorical_crossentropy",
    optimizer=optimizer_class(learning_rate=FLAGS.learning_rate),
    metrics=["accuracy"],
)

callbacks = []
if FLAGS.patience > 0:
    callbacks.append(
        keras.callbacks.EarlyStopping(
            monitor="val_accuracy", patience=FLAGS.patience, restore_best_weights=True
        )
    )

# flagrun adds a TensorBoard callback writing to <run dir>/logs by itself.
model.fit(
    x_train,
    y_train,
    batch_size=FLAGS.batch_size,
    epochs=FLAGS.epochs,
    verbose=2,
    validation_data=(x_val, y_val),
    callbacks=callbacks,
)

model.save("model.keras")
print("Saved model.keras")
