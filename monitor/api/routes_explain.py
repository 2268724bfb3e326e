"""`GET /api/posts/{post_id}/explanation`: which words of a stored post drove the model's label, and how its text
and its image each lean (docs/api.md, "Explanations")."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, Path, Request, status
from pydantic import ValidationError

from monitor.api.auth import require_read
from monitor.api.errors import COMMON, Problem, single_valued_query
from monitor.api.explainer import Explanations, ModelUnavailable
from monitor.api.models import Explanation
from monitor.api.state import ApiState, get_state
from monitor.store.post_content import post_content
from monitor.store.text import StoredText
from schemas import Post

router = APIRouter(prefix="/api", dependencies=[Depends(require_read), Depends(single_valued_query)], responses=COMMON)

EXPLANATION_ERRORS = {
    404: {"model": Problem, "description": "No such post (never stored, or deleted by its source), nothing in it to "
                                           "explain, or explanations are turned off (API_EXPLANATIONS=false): the "
                                           "detail says which"},
    503: {"model": Problem, "description": "The explaining model (MODEL_CHECKPOINT) could not be loaded; logged, and "
                                           "the next request tries again"},
}


def get_explanations(request: Request) -> Explanations:
    return request.app.state.explanations


@router.get("/posts/{post_id:path}/explanation", response_model=Explanation, responses=EXPLANATION_ERRORS,
            summary="Why a post got its label: word attributions and the text/image balance")
async def explanation(post_id: Annotated[StoredText, Path(max_length=128, description="The post's id")],
                      state: ApiState = Depends(get_state),
                      explanations: Explanations = Depends(get_explanations)) -> Explanation:
    """Integrated gradients on the text encoder's word embeddings, computed on demand by the API process's model
    (MODEL_CHECKPOINT, on the CPU; the first request loads it) for the stored text and thumbnail, then cached.
    `same_model` false means the stored label came from another model than the one explaining it."""
    if not state.settings.api.explanations:
        raise HTTPException(status.HTTP_404_NOT_FOUND,
                            detail="explanations are turned off on this server (API_EXPLANATIONS=false)")
    if not explanations.available:
        raise HTTPException(status.HTTP_404_NOT_FOUND, detail="this API process has no model to explain posts with")
    stored = await post_content(state.engine, post_id)
    if stored is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, detail="no such post (never stored, or deleted by its source)")
    try:
        post = Post(post_id=stored.post_id, created_at=stored.created_at, text=stored.text, image=stored.jpeg)
    except ValidationError:
        raise HTTPException(status.HTTP_404_NOT_FOUND,
                            detail="nothing to explain: the post has no stored text or thumbnail") from None
    try:
        model, explained = await explanations.explain(post)
    except ModelUnavailable:
        raise HTTPException(status.HTTP_503_SERVICE_UNAVAILABLE,
                            detail="the explaining model could not be loaded (see the API's log)") from None
    same = model == stored.model_version
    note = None if same else (f"the stored label ({stored.label}) came from model {stored.model_version}; this "
                              f"explanation is model {model}'s, whose label may differ")
    return Explanation(
        post_id=stored.post_id, text=stored.text, text_maybe_cut=stored.maybe_cut, label=explained.label,
        probabilities=explained.probabilities,
        words=[vars(w) for w in explained.words],
        modality=vars(explained.modality) if explained.modality is not None else None,
        with_image=stored.jpeg is not None, truncated=explained.truncated,
        convergence_delta=explained.convergence_delta, logit_change=explained.logit_change, scale=explained.scale,
        n_steps=explained.n_steps, explained_by=model, scored_by=stored.model_version, stored_label=stored.label,
        same_model=same, note=note)
