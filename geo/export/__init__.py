"""Map images and files for reports: PNG, SVG and PDF maps with legend, scale bar and charts, and
the vector shapes they draw, in embedded CJK fonts.

Imports ``geo.query``, ``geo.access``, ``geo.atlas`` and the basics."""
