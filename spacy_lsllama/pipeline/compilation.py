"""Switch the encoders of a loaded pipeline to compiled prediction (`lsllama tag --compile`)."""

from spacy.language import Language
from thinc.api import Model

from ..layers.transformer_model import LAYER_NAME, get_encoder
from ..nn.compile import decoder_layers


def encoder_layers(nlp: Language) -> list[Model]:
    """Every lsllama_transformer layer in the pipeline's components, each once."""
    layers: dict[int, Model] = {}
    for _, component in nlp.pipeline:
        model = getattr(component, "model", None)
        if isinstance(model, Model):
            layers.update((id(node), node) for node in model.walk() if node.name == LAYER_NAME)
    return list(layers.values())


def compile_pipeline(nlp: Language) -> int:
    """Switch every encoder of a loaded pipeline to compiled prediction; how many there were."""
    layers = encoder_layers(nlp)
    if not layers:
        raise ValueError(
            f"The pipeline has no {LAYER_NAME} layer, so there is nothing to compile "
            f"(components: {', '.join(nlp.pipe_names) or 'none'})."
        )
    encoders = [get_encoder(layer) for layer in layers]
    for encoder in encoders:
        decoder_layers(encoder.model)
    for encoder in encoders:
        encoder.use_compiled(True)
    return len(layers)
