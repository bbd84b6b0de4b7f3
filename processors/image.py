"""`image`: pictures from a prompt with the OpenAI images API, one call per image, each stored
as a PNG with a thumbnail and the provider's metadata (model, revised prompt).

A content-policy refusal fails the task at once with the provider's reason (the adapter
raises PermanentError); a rate limit or 5xx is retried by the adapter, then by the policy.
"""

import io
import json

import marshmallow
import PIL.Image
from marshmallow import validate

from processors import base, errors
from processors.policy import Policy
from processors.providers import openai_api

SIZES = ("1024x1024", "1024x1792", "1792x1024")
THUMBNAIL = (256, 256)


class Params(marshmallow.Schema):
    prompt = marshmallow.fields.String(required=True, validate=validate.Length(min=1, max=4000))
    style = marshmallow.fields.String(load_default="vivid", validate=validate.OneOf(("vivid", "natural")))
    size = marshmallow.fields.String(load_default="1024x1024", validate=validate.OneOf(SIZES))
    n = marshmallow.fields.Integer(load_default=1, validate=validate.Range(min=1, max=4))
    quality = marshmallow.fields.String(load_default="standard", validate=validate.OneOf(("standard", "hd")))


class ImageProcessor(base.Processor):
    """Generate `n` images, reporting progress after each."""

    type = "image"
    description = "Images from a prompt (OpenAI images): PNG, thumbnail and the provider's metadata."
    Params = Params
    providers = ("openai",)
    policy = Policy(max_attempts=3, backoff_base=5.0, soft_timeout=600.0, hard_timeout=660.0, pool="io", estimate=30.0)

    def run(self, params: dict, ctx: base.Context) -> dict:
        images = []
        ctx.progress(0, "generating", f"image 1 of {params['n']}")
        for index in range(1, params["n"] + 1):
            made = openai_api.generate_image(
                ctx.settings,
                params["prompt"],
                size=params["size"],
                quality=params["quality"],
                style=params["style"],
                ctx=ctx,
            )
            ctx.meter("images", 1, made.model)
            images.append(self._store(ctx, index, made, params))
            ctx.progress(100 * index / params["n"], "generating", f"image {index} of {params['n']} ready")
        return {"images": images, "model": images[0]["model"], "count": len(images)}

    def _store(self, ctx: base.Context, index: int, made, params: dict) -> dict:
        picture = _decode(made.png_bytes)
        png = ctx.workdir / f"image-{index}.png"
        picture.save(png, format="PNG")
        thumb = ctx.workdir / f"image-{index}-thumb.png"
        small = picture.copy()
        small.thumbnail(THUMBNAIL)
        small.save(thumb, format="PNG")
        meta = {
            "model": made.model,
            "revised_prompt": made.revised_prompt,
            "prompt": params["prompt"],
            "size": params["size"],
            "quality": params["quality"],
            "style": params["style"],
            "width": picture.width,
            "height": picture.height,
        }
        metadata_file = ctx.workdir / f"image-{index}.json"
        metadata_file.write_text(json.dumps(meta, indent=2))
        stored = ctx.artifact(png, "image", "image/png", meta)
        ctx.artifact(thumb, "thumbnail", "image/png", {"of": png.name, "width": small.width, "height": small.height})
        ctx.artifact(metadata_file, "metadata", "application/json")
        return {**meta, "artifact": stored.get("id"), "name": png.name}


def _decode(data: bytes) -> PIL.Image.Image:
    """Return the provider's bytes as a loaded RGB(A) image; RetryableError if not an image."""
    try:
        picture = PIL.Image.open(io.BytesIO(data))
        picture.load()
    except (OSError, PIL.UnidentifiedImageError) as exc:
        raise errors.RetryableError(f"the provider's answer is not an image: {exc}") from exc
    return picture if picture.mode in ("RGB", "RGBA") else picture.convert("RGBA")
