-- book.lua: the book's own presentation, after tree.lua has filled in the code.
-- book/build.py passes it a metadata table of pages (see build.py's link_tables).

return {}
