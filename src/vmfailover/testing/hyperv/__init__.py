"""A simulated Hyper-V host that speaks WinRM and PSRP, for pypsrp clients to test against."""
