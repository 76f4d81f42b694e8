"""What bench/report.py and bench/distance_report.py draw alike, by hand (no plotting
library): the SVG's frame, a legend entry, and the file."""


def start(width, height):
    """The opening of an SVG of that size on white, as a list of lines to append to."""
    return [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
            f'font-family="sans-serif" font-size="12">', f'<rect width="{width}" height="{height}" fill="white"/>']


def legend_entry(svg, x, baseline, colour, text):
    """A 12-pixel square of `colour` at x, its label after it, on `baseline`."""
    svg.append(f'<rect x="{x}" y="{baseline - 10}" width="12" height="12" fill="{colour}"/>')
    svg.append(f'<text x="{x + 16}" y="{baseline}">{text}</text>')


def write(svg, path):
    """Closes the SVG and writes it to path."""
    with open(path, "w") as f:
        f.write("\n".join(svg + ["</svg>"]) + "\n")
