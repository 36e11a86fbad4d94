import click


@click.command()
@click.option("--hidden-units", type=int, default=32)
@click.option("--dropout", type=float, default=0.2)
@click.option("--activation", type=click.Choice(["relu", "tanh"]), default="relu")
@click.option("--shuffle/--no-shuffle", default=True)
def main(hidden_units, dropout, activation, shuffle):
    raise SystemExit("the training ran")


if __name__ == "__main__":
    main()
