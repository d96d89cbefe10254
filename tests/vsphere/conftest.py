from vmfailover.testing.vcsim.fixtures import vcsim_session

__all__ = ["vcsim_session"]
