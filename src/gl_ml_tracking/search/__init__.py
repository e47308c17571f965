"""Search and paging shared by every listing: the filter grammar (:mod:`.scanner`,
:mod:`.grammar`, :mod:`.grammars`), its compilation to SQL (:mod:`.sql`), keyset pages
(:mod:`.keyset`) and their signed tokens (:mod:`.tokens`).

Business rules (which rows a search may see, its limits) live in the services that
use these modules; nothing here knows a project or a permission.
"""
