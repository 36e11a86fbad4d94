from flagrun import flags, flag_integer, flag_numeric, log_metrics

FLAGS = flags(flag_numeric("x", 0.5), flag_integer("epochs", 3))
for epoch in range(FLAGS.epochs):
    log_metrics({"val_acc": 1.0 - (FLAGS.x - 0.3) ** 2 - 0.1 / (epoch + 1)}, step=epoch)
