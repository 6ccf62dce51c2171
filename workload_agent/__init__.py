"""workload-agent: ptrace-based runtime threat detection with Falco-syntax rules."""
__version__ = "0.1.0"
