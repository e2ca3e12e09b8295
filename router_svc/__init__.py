"""llm-router service: all I/O (gRPC server, config, providers, storage, metrics, CLI)."""
