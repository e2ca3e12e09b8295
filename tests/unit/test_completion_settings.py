"""CompletionSettings from the shipped RouterConfig."""

from __future__ import annotations

from router_core._config_loader import default_config_path, load_config
from router_svc._completion_types import CompletionSettings


def test_from_shipped_config() -> None:
    config = load_config(default_config_path())
    settings = CompletionSettings.from_config(config)
    assert settings.attempt_timeout_s == config.timeouts.attempt_timeout_s
    assert settings.total_timeout_s == config.timeouts.total_timeout_s
    assert settings.provider.connect_timeout_s == config.timeouts.connect_timeout_s
    assert settings.retry.max_attempts == config.retries.max_attempts
    assert settings.retry.base_delay_s == config.retries.backoff_base_s
    assert settings.breaker.failure_threshold == config.breaker.failure_threshold
    assert settings.provider.max_connections == config.limits.max_concurrent_streams
    # keys the config does not carry keep real default values (not class slot descriptors)
    defaults = CompletionSettings()
    assert isinstance(settings.default_max_tokens, int)
    assert isinstance(settings.retry.max_retry_after_s, float)
    assert isinstance(settings.provider.max_response_bytes, int)
    assert settings.provider.anthropic_version == defaults.provider.anthropic_version
