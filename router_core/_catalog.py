"""The model catalog, flattened once per config into plain tuples for the decision path."""

from __future__ import annotations

from collections.abc import Iterator, Sequence

from router_core._config_schema import ModelSpec, RouterConfig

__all__ = ["Catalog"]


class Catalog:
    """Catalog models in config order, with per-index prices, limits and quality outputs.

    ``quality_index[i]`` is the position of model ``i``'s trained output in the quality model's
    prediction vector (its own name if trained, else its ``quality_ref``), or -1 if the
    quality model knows nothing about it (such a model is never a classifier candidate).
    """

    __slots__ = (
        "_specs",
        "capabilities",
        "context_window",
        "index",
        "input_price",
        "names",
        "output_price",
        "providers",
        "quality_index",
        "quality_names",
    )

    def __init__(self, specs: Sequence[ModelSpec], trained: Sequence[str] | None = None) -> None:
        self._specs = tuple(specs)
        self.names = tuple(s.name for s in specs)
        self.index = {name: i for i, name in enumerate(self.names)}
        self.providers = tuple(s.provider for s in specs)
        self.input_price = tuple(float(s.input_price_per_mtok) for s in specs)
        self.output_price = tuple(float(s.output_price_per_mtok) for s in specs)
        self.context_window = tuple(int(s.context_window) for s in specs)
        self.capabilities = tuple(s.capabilities.names() for s in specs)
        trained_index = {name: i for i, name in enumerate(trained or ())}
        refs = tuple(s.quality_ref or s.name for s in specs)
        self.quality_index = tuple(trained_index.get(ref, -1) for ref in refs)
        self.quality_names = tuple(
            ref if q >= 0 else None for ref, q in zip(refs, self.quality_index, strict=True)
        )

    @classmethod
    def from_config(cls, config: RouterConfig, trained: Sequence[str] | None) -> Catalog:
        """Build the catalog; a ``quality_ref`` that the quality model does not output is an error.

        Raises:
            ConfigError: naming ``models[i].quality_ref``.
        """
        if trained is not None:
            known = set(trained)
            for i, spec in enumerate(config.models):
                if spec.quality_ref is not None and spec.quality_ref not in known:
                    raise config.error(
                        ("models", i, "quality_ref"),
                        f"{spec.quality_ref!r} is not an output of the router model "
                        f"(outputs: {', '.join(trained)})",
                    )
        return cls(config.models, trained)

    def __len__(self) -> int:
        return len(self.names)

    def __iter__(self) -> Iterator[ModelSpec]:
        return iter(self._specs)

    def __contains__(self, name: object) -> bool:
        return name in self.index

    def __getitem__(self, name: str) -> ModelSpec:
        """The catalog entry called ``name`` (KeyError if absent)."""
        return self._specs[self.index[name]]

    def quality_name(self, name: str) -> str | None:
        """The trained output that stands for catalog model ``name`` (None if none does)."""
        return self.quality_names[self.index[name]]

    def cost(self, i: int, input_tokens: int, output_tokens: int) -> float:
        """Estimated USD cost of one call to model ``i``."""
        return (input_tokens * self.input_price[i] + output_tokens * self.output_price[i]) / 1e6
