import fire


def train(epochs=3, learning_rate=0.01, optimizer="adam"):
    raise SystemExit("the training ran")


if __name__ == "__main__":
    fire.Fire(train)
