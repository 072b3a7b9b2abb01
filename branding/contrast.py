"""Colour contrast by WCAG 2.x: relative luminance and contrast ratio, and the check that refuses a
brand colour on which (or beside which) text would be hard to read.

https://www.w3.org/TR/WCAG21/#dfn-relative-luminance, https://www.w3.org/TR/WCAG21/#dfn-contrast-ratio;
4.5:1 is level AA for normal text (success criterion 1.4.3).
"""

import re

HEX_COLOR = re.compile(r"^#[0-9a-fA-F]{6}$")
MINIMUM_RATIO = 4.5
WHITE = "#ffffff"
# The page's background in static/portal/portal.css (--bg), which links in the accent colour sit on.
PAGE_BACKGROUND = "#f4f6f5"


def _channel(value: int) -> float:
    srgb = value / 255
    return srgb / 12.92 if srgb <= 0.04045 else ((srgb + 0.055) / 1.055) ** 2.4


def relative_luminance(color: str) -> float:
    """The relative luminance (0 black … 1 white) of a `#rrggbb` colour."""
    red, green, blue = (int(color[i : i + 2], 16) for i in (1, 3, 5))
    return 0.2126 * _channel(red) + 0.7152 * _channel(green) + 0.0722 * _channel(blue)


def contrast_ratio(first: str, second: str) -> float:
    """The contrast ratio of two `#rrggbb` colours, from 1 (the same) to 21 (black on white)."""
    lighter, darker = sorted((relative_luminance(first), relative_luminance(second)), reverse=True)
    return (lighter + 0.05) / (darker + 0.05)


def contrast_problem(color: str, *, against: dict[str, str]) -> str | None:
    """Why `color` cannot be used, or None: each of `against` (what → colour) must reach 4.5:1."""
    for what, other in against.items():
        ratio = contrast_ratio(color, other)
        if ratio < MINIMUM_RATIO:
            return (
                f"{color} is too light or too close to {what}: its contrast is {ratio:.1f}:1 and text needs "
                f"at least {MINIMUM_RATIO}:1 to stay readable. Choose a darker colour."
            )
    return None
