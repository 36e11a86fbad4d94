import typer


def main(epochs: int = 3, learning_rate: float = 0.01, model_name: str = "mlp"):
    raise SystemExit("the training ran")


if __name__ == "__main__":
    typer.run(main)
