"""The FC-CLIP network: frozen CLIP backbone, pixel decoder, transformer decoder, and the
in-/out-of-vocabulary classifiers with FC-CLIP's geometric ensemble."""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import nullcontext

import torch
import torch.nn.functional as F
from torch import nn

from .backbone import CLIPBackbone
from .config import FCCLIPConfig
from .pixel_decoder import MSDeformAttnPixelDecoder
from .transformer_decoder import MaskedTransformerDecoder, get_classification_logits

__all__ = ["FCCLIP", "geometric_ensemble"]


def geometric_ensemble(
    pred_logits: torch.Tensor,
    out_vocab_logits: torch.Tensor,
    seen: torch.Tensor,
    *,
    alpha: float,
    beta: float,
    valid: torch.Tensor | None = None,
) -> dict[str, torch.Tensor]:
    """FC-CLIP's ensemble of in-vocabulary (``pred_logits`` [..., K+1], void last) and
    out-of-vocabulary (``out_vocab_logits`` [..., K+1]) classifiers.

    Seen classes: ``in**(1-alpha) * out**alpha``; unseen: ``beta``. With ``valid`` (queries whose
    pooled mask is non-empty, ``ENSEMBLE_ON_VALID_MASK``), invalid queries use the in-vocabulary
    probabilities only. The result is re-weighted by ``1 - p(void)`` and returned as
    ``log(p + 1e-8)`` [..., K+1] (void last), as the official code does.
    """
    in_probs = pred_logits[..., :-1].softmax(-1)
    out_probs = out_vocab_logits[..., :-1].softmax(-1)
    a = torch.full_like(in_probs, alpha)
    b = torch.full_like(in_probs, beta)
    if valid is not None:
        v = valid.to(in_probs.dtype).unsqueeze(-1)
        a, b = a * v, b * v
    seen = seen.to(device=in_probs.device, dtype=torch.bool)
    ens_seen = (in_probs ** (1 - a) * out_probs**a).log()
    ens_unseen = (in_probs ** (1 - b) * out_probs**b).log()
    # official: seen * log(...) + (1 - seen) * log(...); where() avoids 0 * -inf = NaN on underflow
    cls = torch.where(seen, ens_seen, ens_unseen)
    void = F.softmax(pred_logits, dim=-1)[..., -1:]
    probs = torch.cat([cls.softmax(-1) * (1.0 - void), void], dim=-1)
    return {"in_vocab_probs": in_probs, "out_vocab_probs": out_probs, "mask_cls": torch.log(probs + 1e-8)}


class FCCLIP(nn.Module):
    """FC-CLIP inference network (batch of normalised, padded images -> mask and class predictions).

    ``channels_last`` (default True, one of :meth:`use_fast_formulations`): on CPU the backbone
    reads the batch in channels-last memory order, which oneDNN's convolutions run about 25%
    faster here (the same values up to float rounding); its features then reach the pixel
    decoder's convolutions in that order too."""

    channels_last = True
    #: True: the pixel decoder outside autocast, in fp32, as the official code runs it (its CUDA
    #: deformable-attention kernel is fp32-only). This project's sampling is plain PyTorch, so a
    #: reduced precision reaches it too by default; the sampling locations stay fp32 (reference
    #: points + offsets), only the offsets, weights and values are bf16. On case0 (CPU bf16):
    #: 1.75x fp32's speed with it, 1.2x without, 10 vs 2 of 135,300 labels flipped.
    pixel_decoder_fp32 = False

    # buffers registered in __init__
    pixel_mean: torch.Tensor
    pixel_std: torch.Tensor

    def __init__(
        self,
        *,
        backbone: CLIPBackbone,
        pixel_decoder: MSDeformAttnPixelDecoder,
        transformer_decoder: MaskedTransformerDecoder,
        embed_dim: int,
        alpha: float = 0.4,
        beta: float = 0.8,
        ensemble_on_valid_mask: bool = False,
        pixel_mean: Sequence[float] = (0.0, 0.0, 0.0),
        pixel_std: Sequence[float] = (1.0, 1.0, 1.0),
        size_divisibility: int = 32,
    ):
        super().__init__()
        self.backbone = backbone
        self.pixel_decoder = pixel_decoder
        self.transformer_decoder = transformer_decoder
        self.void_embedding = nn.Embedding(1, embed_dim)
        self.alpha, self.beta = float(alpha), float(beta)
        self.ensemble_on_valid_mask = bool(ensemble_on_valid_mask)
        self.size_divisibility = int(size_divisibility)
        self._pixel_mean, self._pixel_std = tuple(pixel_mean), tuple(pixel_std)
        self.register_buffer("pixel_mean", torch.tensor(pixel_mean, dtype=torch.float32).view(-1, 1, 1), False)
        self.register_buffer("pixel_std", torch.tensor(pixel_std, dtype=torch.float32).view(-1, 1, 1), False)

    @classmethod
    def from_config(
        cls,
        cfg: FCCLIPConfig,
        *,
        pretrained: bool | str | None = False,
        device: str | torch.device = "cpu",
        allow_download: bool = True,
    ) -> FCCLIP:
        backbone = CLIPBackbone.from_config(cfg, pretrained=pretrained, device=device, allow_download=allow_download)
        with torch.device(device) if str(device) == "meta" else nullcontext():
            pixel_decoder = MSDeformAttnPixelDecoder.from_config(
                cfg, backbone.feature_channels, backbone.feature_strides
            )
            decoder = MaskedTransformerDecoder.from_config(cfg, in_channels=cfg.conv_dim)
            model = cls(
                backbone=backbone,
                pixel_decoder=pixel_decoder,
                transformer_decoder=decoder,
                embed_dim=cfg.embed_dim,
                alpha=cfg.geometric_ensemble_alpha,
                beta=cfg.geometric_ensemble_beta,
                ensemble_on_valid_mask=cfg.ensemble_on_valid_mask,
                pixel_mean=cfg.pixel_mean,
                pixel_std=cfg.pixel_std,
                size_divisibility=cfg.size_divisibility,
            )
        return model.to(device) if str(device) != "meta" else model

    def materialize_buffers(self) -> FCCLIP:
        """Create the non-persistent buffers of a model built on the meta device and loaded with
        ``load_state_dict(..., assign=True)`` (normalisation constants, CLIP's causal text mask)."""
        if self.pixel_mean.is_meta:
            self.pixel_mean = torch.tensor(self._pixel_mean, dtype=torch.float32).view(-1, 1, 1)
            self.pixel_std = torch.tensor(self._pixel_std, dtype=torch.float32).view(-1, 1, 1)
        clip = self.backbone.clip_model
        if getattr(clip, "attn_mask", None) is not None and clip.attn_mask.is_meta:
            n = clip.attn_mask.shape[0]
            clip.register_buffer("attn_mask", torch.full((n, n), float("-inf")).triu_(1), persistent=False)
        for name, t in list(self.named_parameters()) + list(self.named_buffers()):
            if t.is_meta:
                raise RuntimeError(f"{name} is still on the meta device (not in the loaded state_dict)")
        return self

    def use_fast_formulations(self, enabled: bool = True) -> FCCLIP:
        """Select the faster CPU formulations of the heads (``enabled``, the default) or the
        official code's order of operations: the pixel decoder's deformable attention as one
        gather (``sampling="gather"``, else ``grid_sample`` per level), its encoder layers' queries
        in cache-sized chunks on CPU (``chunk_tokens``, else one chunk), the backbone's input in
        channels-last order on CPU (``channels_last``) and the decoder's attention
        masks from resized mask features (``block_masks="features"``, else resized masks). They
        differ by float rounding only (see their modules for the effect of that rounding on
        thresholded attention masks)."""
        from .pixel_decoder import CPU_CHUNK_TOKENS, MSDeformAttn, MSDeformAttnEncoderLayer

        for m in self.pixel_decoder.modules():
            if isinstance(m, MSDeformAttn):
                m.sampling = "gather" if enabled else "grid_sample"
            if isinstance(m, MSDeformAttnEncoderLayer):
                m.chunk_tokens = CPU_CHUNK_TOKENS if enabled else None
        self.transformer_decoder.block_masks = "features" if enabled else "masks"
        self.channels_last = enabled
        return self

    # -- input ----------------------------------------------------------------------------------
    def normalize_and_pad(self, images: torch.Tensor | Sequence[torch.Tensor]) -> tuple[torch.Tensor, list]:
        """uint8/float CHW images (0-255) -> normalised batch zero-padded (after normalisation) at the
        bottom/right to a multiple of ``size_divisibility``; also returns each image's (h, w)."""
        if isinstance(images, torch.Tensor) and images.ndim == 3:
            images = [images]
        device = self.pixel_mean.device
        normed = [(img.to(device).float() - self.pixel_mean) / self.pixel_std for img in images]
        sizes = [tuple(x.shape[-2:]) for x in normed]
        max_h = max(s[0] for s in sizes)
        max_w = max(s[1] for s in sizes)
        d = self.size_divisibility
        if d > 1:
            max_h, max_w = (max_h + d - 1) // d * d, (max_w + d - 1) // d * d
        batch = normed[0].new_zeros((len(normed), 3, max_h, max_w))
        for i, x in enumerate(normed):
            batch[i, :, : x.shape[-2], : x.shape[-1]].copy_(x)
        return batch, sizes

    def text_classifier_with_void(self, text_classifier: torch.Tensor) -> torch.Tensor:
        return torch.cat(
            [text_classifier.to(self.void_embedding.weight), F.normalize(self.void_embedding.weight, dim=-1)], dim=0
        )

    # -- forward --------------------------------------------------------------------------------
    def forward(
        self,
        images: torch.Tensor,
        text_classifier: torch.Tensor,
        num_synonyms: Sequence[int],
        seen: torch.Tensor,
        *,
        timer=None,
        aux_outputs: bool = False,
        return_features: bool = False,
        image_size: tuple[int, int] | None = None,
    ) -> dict[str, torch.Tensor]:
        """``images``: normalised padded batch [B,3,H,W]; ``text_classifier`` [S,C] rows per synonym
        (normalised, without void); ``num_synonyms`` rows per class (sum S); ``seen`` [K] bool.

        Returns pred_logits [B,Q,K+1], pred_masks [B,Q,H/4,W/4], out_vocab_logits [B,Q,K+1],
        pooled_clip_feature, valid_masking [B,Q], in_vocab_probs, out_vocab_probs [B,Q,K] and
        mask_cls [B,Q,K+1] (final log-probabilities, void last). ``image_size``: the (h, w) the
        batch's images have before padding; adds image_embedding [B,D] (CLIP's embedding of each
        whole image, :meth:`CLIPBackbone.image_embedding`).
        """
        stage = timer if timer is not None else (lambda name: nullcontext())
        with stage("backbone"):
            if self.channels_last and images.device.type == "cpu":
                images = images.contiguous(memory_format=torch.channels_last)
            features = self.backbone(images, stem=return_features)
        fp32 = torch.autocast(images.device.type, enabled=False) if self.pixel_decoder_fp32 else nullcontext()
        with stage("pixel_decoder"), fp32:
            mask_features, multi_scale = self.pixel_decoder(features)
        clip_dense = features["clip_vis_dense"]
        if not return_features:  # the other backbone levels (res2 alone is 62 MB at case0) are done with
            features = {}
        classifier = self.text_classifier_with_void(text_classifier)
        with stage("transformer_decoder"):
            out = self.transformer_decoder(
                multi_scale, mask_features, classifier, num_synonyms, aux_outputs=aux_outputs
            )
        cells = None
        if image_size is not None:  # the feature cells the unpadded image covers
            h, w = (
                -(-n * c // p) for n, c, p in zip(image_size, clip_dense.shape[-2:], images.shape[-2:], strict=True)
            )
            cells = (h, w)
        with stage("classifiers"):
            out.update(
                self.classify(
                    clip_dense, out["pred_logits"], out["pred_masks"], classifier, num_synonyms, seen, image_cells=cells
                )
            )
        if return_features:
            out["features"] = features
            out["mask_features"] = mask_features
            out["multi_scale_features"] = multi_scale
        return out

    def classify(self, clip_dense, pred_logits, pred_masks, classifier, num_synonyms, seen, *, image_cells=None):
        """Out-of-vocabulary classification (CLIP on each mask) and the geometric ensemble;
        ``image_cells``: also ``image_embedding``, CLIP's embedding of the image those cells cover."""
        mask_for_pooling = F.interpolate(pred_masks, size=clip_dense.shape[-2:], mode="bilinear", align_corners=False)
        pooled = self.backbone.visual_prediction_forward(
            clip_dense, mask_for_pooling.to(clip_dense.dtype), image_cells=image_cells
        )
        image = None
        if image_cells is not None:
            pooled, image = pooled
        out_logits = get_classification_logits(
            pooled.float(), classifier, self.backbone.clip_model.logit_scale, num_synonyms
        )
        valid = (mask_for_pooling > 0).flatten(2).any(-1)
        ens = geometric_ensemble(
            pred_logits.float(),
            out_logits,
            seen,
            alpha=self.alpha,
            beta=self.beta,
            valid=valid if self.ensemble_on_valid_mask else None,
        )
        out = {"pooled_clip_feature": pooled, "out_vocab_logits": out_logits, "valid_masking": valid, **ens}
        if image is not None:
            out["image_embedding"] = image
        return out
