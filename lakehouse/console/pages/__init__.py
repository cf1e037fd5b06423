"""One module per console page; each defines ``router = APIRouter()`` (see ``app.PAGES``)."""
