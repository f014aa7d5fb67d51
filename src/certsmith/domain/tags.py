"""Resource tags as ACM and ACM-PCA keep them: ``{"Key", "Value"?}``, at most 50, no ``aws:`` keys."""

from __future__ import annotations

from typing import Any

from .errors import InvalidTagError, TooManyTagsError

__all__ = ["MAX_TAGS", "check_tag_keys", "check_tags", "tags_with", "tags_without"]

MAX_TAGS = 50


def check_tags(tags: list[dict[str, Any]], field: str = "Tags") -> None:
    """No tag may be set or removed under the reserved ``aws:`` prefix."""
    check_tag_keys([str(tag.get("Key", "")) for tag in tags], field, ".Key")


def check_tag_keys(keys: list[str], field: str = "TagKeys", member: str = "") -> None:
    for index, key in enumerate(keys):
        if key.lower().startswith("aws:"):
            raise InvalidTagError(f"{field}[{index}]{member} {key!r} uses the reserved prefix aws:",
                                  field=f"{field}[{index}]{member}")


def tags_with(existing: list[dict[str, Any]], added: list[dict[str, Any]], what: str) -> list[dict[str, Any]]:
    """``existing`` with ``added`` set (a key given again takes the new value); TooManyTags past the limit."""
    check_tags(added)
    merged = {t["Key"]: t.get("Value") for t in existing}
    for tag in added:
        merged[tag["Key"]] = tag.get("Value")
    if len(merged) > MAX_TAGS:
        raise TooManyTagsError(f"the {what} would have {len(merged)} tags; the limit is {MAX_TAGS}", field="Tags")
    return [{"Key": k, "Value": v} if v is not None else {"Key": k} for k, v in merged.items()]


def tags_without(existing: list[dict[str, Any]], removed: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """``existing`` less every tag named in ``removed`` (by key, and by value when one is given); ``aws:`` keys
    are refused, as when adding."""
    check_tags(removed)
    return [tag for tag in existing
            if not any(r["Key"] == tag["Key"] and ("Value" not in r or r["Value"] == tag.get("Value"))
                       for r in removed)]
