"""Review pages: a video as the store sees it, in the browser, offline.

``data`` (what a page shows, read from the store), ``thumbs`` (the strip of frames),
``runs`` (a trained run's frame probabilities and video score), ``figure`` (the
plotly figure), ``page`` (a video's HTML page), ``index`` (the site's index page),
``site`` (writing one page or a whole site).
"""
