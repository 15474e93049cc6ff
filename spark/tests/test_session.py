"""The session helpers: starting the executors' Python workers ahead of the kernel."""

from __future__ import annotations

from feature_store.session import start_python_workers


def test_the_python_workers_start_in_the_background_on_the_real_engine(spark, capsys):
    thread = start_python_workers(spark)
    assert thread.daemon  # never holds a finished run open
    thread.join(timeout=180)
    assert not thread.is_alive()
    # The warm-up job ran: a failed one says so on stderr (and is the only thing that would).
    assert "python workers were not started ahead" not in capsys.readouterr().err


class _BrokenSession:
    def range(self, *_args, **_kwargs):  # SparkSession's name
        raise RuntimeError("the context is gone")


def test_a_warm_up_that_fails_says_so_in_one_line_and_raises_nothing(capsys):
    thread = start_python_workers(_BrokenSession())
    thread.join(timeout=30)
    assert not thread.is_alive()
    err = capsys.readouterr().err
    assert (
        "python workers were not started ahead (harmless: the kernel starts its own): RuntimeError: the context is gone"
        in err
    )
