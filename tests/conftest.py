"""Shared by the tests: the commands they start receive SIGINT as from a terminal's Ctrl-C."""
import signal
import pytest


@pytest.fixture(autouse=True, scope='session')
def sigint_reaches_the_commands():
    """A harness that starts pytest with SIGINT ignored (nohup, a script's background job) passes that on to every
    command the tests start, and their Ctrl-C would never arrive. A handled signal is reset to the default in a child,
    an ignored one is not: so SIGINT is handled here, for the session."""
    old = signal.getsignal(signal.SIGINT)
    if old == signal.SIG_IGN: signal.signal(signal.SIGINT, signal.default_int_handler)
    yield
    signal.signal(signal.SIGINT, old)
