"""The book's helpers: notebook start-up, plots, widgets, exercises, the results page. Nothing imports teach."""
