"""``python -m syncd`` and the ``syncd`` console script: the ``syncd`` command."""

import gc


def main() -> None:
    """Run the ``syncd`` command. Its modules load with the garbage collector off (they
    make tens of thousands of objects and no garbage: a short ``syncd run`` spent a tenth
    of its time collecting them), and are then kept out of every later collection."""
    gc.disable()
    try:
        from syncd.cli import main as command
    finally:
        gc.freeze()
        gc.enable()
    command()


if __name__ == "__main__":
    main()
