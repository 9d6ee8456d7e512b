-- book.lua: the book's own presentation, after tree.lua has filled in the code.
-- book/build.py passes it a metadata table of pages (see build.py's link_tables).
--
--   long lines   a code line longer than WRAP columns (tabs at 8) is wrapped, and each
--                continuation starts with MARK, so that every listing fits the code column
--                (book.css sizes that column for 112 columns at a 1280-pixel window; the
--                tree is written at 100, so only pasted output ever wraps)
--   figures      every figure is numbered, "Figure 5.2" (chapter 5's second), in its
--                caption; on an HTML page the diagram links to its full-size SVG, and
--                one wider than the prose column (46em) gets class "wide", which lets it
--                use the whole text area
--   links        "step 5" or "Step 05" becomes a link to that step's chapter, and
--                "section 5.2" (or "Section 5.2.1") to that section, on its page; a
--                mention of the page's own step stays text; plural forms ("steps 1 to 4")
--                are left alone, as they often count something else

local WRAP = 108
local MARK = "↪ "

-- Long lines ----------------------------------------------------------------------

local function characters(line)
  local chars, column = {}, 0
  for _, code in utf8.codes(line) do
    local char = utf8.char(code)
    if char == "\t" then
      local width = 8 - column % 8
      for _ = 1, width do
        chars[#chars + 1] = " "
      end
      column = column + width
    else
      chars[#chars + 1] = char
      column = column + 1
    end
  end
  return chars
end

-- Where to end a piece of at most `width` characters starting at `first`: after the last
-- comma or space in its final quarter, else at the width.
local function break_at(chars, first, width)
  local last = first + width - 1
  if last >= #chars then
    return #chars
  end
  for i = last, first + math.floor(width * 3 / 4), -1 do
    if chars[i] == "," or chars[i] == " " then
      return i
    end
  end
  return last
end

local function wrap_line(line)
  if not line:find("\t") and utf8.len(line) and utf8.len(line) <= WRAP then
    return line
  end
  local chars = characters(line)
  if #chars <= WRAP then
    return line
  end
  local pieces, first, width = {}, 1, WRAP
  while first <= #chars do
    local last = break_at(chars, first, width)
    pieces[#pieces + 1] = (#pieces > 0 and MARK or "") .. table.concat(chars, "", first, last)
    first, width = last + 1, WRAP - utf8.len(MARK)
  end
  return table.concat(pieces, "\n")
end

local function CodeBlock(block)
  local lines, changed = {}, false
  for line in (block.text .. "\n"):gmatch("([^\n]*)\n") do
    local wrapped = wrap_line(line)
    changed = changed or wrapped ~= line
    lines[#lines + 1] = wrapped
  end
  if changed then
    block.text = table.concat(lines, "\n")
    return block
  end
end

-- Figures -------------------------------------------------------------------------

local PROSE_PX = 46 * 17  -- book.css: the prose column

local function escape(text)
  return (text:gsub("&", "&amp;"):gsub("<", "&lt;"):gsub(">", "&gt;"):gsub('"', "&quot;"))
end

-- The single image of an implicit figure (a paragraph holding only an image with a caption).
local function figure_image(block)
  if block.t == "Para" and #block.content == 1 and block.content[1].t == "Image" then
    local img = block.content[1]
    if img.title:match("^fig:") then
      return img
    end
  end
end

-- An SVG's own size in CSS pixels, from the mediabag tree.lua filled.
local function svg_size(src)
  local ok, _, contents = pcall(pandoc.mediabag.lookup, src)
  if not ok or not contents then
    return nil
  end
  local width, height = contents:match('<svg width="([%d.]+)pt" height="([%d.]+)pt"')
  if width then
    return math.floor(tonumber(width) * 4 / 3 + 0.5), math.floor(tonumber(height) * 4 / 3 + 0.5)
  end
end

local function html_figure(img, label, ident)
  local width, height = svg_size(img.src)
  local classes = (width and width > PROSE_PX) and "diagram wide" or "diagram"
  local size = width and string.format(' width="%d" height="%d"', width, height) or ""
  local src = escape(img.src)
  local caption = pandoc.List({pandoc.Span({pandoc.Str(label .. ".")}, pandoc.Attr("", {"figure-number"})),
                               pandoc.Space()})
  caption:extend(img.caption)
  caption:extend({pandoc.Space(), pandoc.Link({pandoc.Str("Full size")}, img.src, "The diagram alone, at its full size",
                                              pandoc.Attr("", {"full-size"}))})
  return {
    pandoc.RawBlock("html", string.format(
      '<figure id="%s" class="%s">\n<a href="%s" title="%s: the diagram at its full size"><img src="%s" alt="%s"%s></a>\n<figcaption>',
      ident, classes, src, label, src, escape(pandoc.utils.stringify(img.caption)), size)),
    pandoc.Plain(caption),
    pandoc.RawBlock("html", "</figcaption>\n</figure>"),
  }
end

local function number_figures(doc)
  local fixed = doc.meta["ringzero-chapter"] and pandoc.utils.stringify(doc.meta["ringzero-chapter"])
  local chapter, chapters, count = fixed, 0, 0
  local html = FORMAT:match("html") ~= nil
  local function visit(blocks)
    local out = pandoc.List()
    for _, block in ipairs(blocks) do
      if block.t == "Header" and block.level == 1 and not fixed then
        count = 0
        chapter = nil
        if not block.classes:includes("unnumbered") then
          chapters = chapters + 1
          chapter = tostring(chapters)
        end
      end
      if block.t == "Div" or block.t == "BlockQuote" then
        block.content = visit(block.content)
      end
      local img = figure_image(block)
      if img then
        count = count + 1
        local number = chapter and (chapter .. "." .. count) or tostring(count)
        local label = "Figure " .. number
        local ident = "figure-" .. number:gsub("%.", "-")
        if html then
          out:extend(html_figure(img, label, ident))
        else
          local caption = pandoc.List({pandoc.Strong({pandoc.Str(label .. ".")}), pandoc.Space()})
          caption:extend(img.caption)
          img.caption = caption
          out:insert(pandoc.Div({block}, pandoc.Attr(ident, {"figure"})))
        end
      else
        out:insert(block)
      end
    end
    return out
  end
  doc.blocks = visit(doc.blocks)
  return doc
end

-- Links -------------------------------------------------------------------------

local step_targets, section_targets, this_page = {}, {}, nil

local function read_tables(meta)
  local stringify = pandoc.utils.stringify
  for key, value in pairs(meta["ringzero-steps"] or {}) do
    step_targets[key] = stringify(value)
  end
  for key, value in pairs(meta["ringzero-sections"] or {}) do
    section_targets[key] = stringify(value)
  end
  this_page = meta["ringzero-page"] and stringify(meta["ringzero-page"])
end

-- A target on the page being written is only its fragment.
local function local_target(target)
  if this_page and target:sub(1, #this_page + 1) == this_page .. "#" then
    return target:sub(#this_page + 1)
  end
  return target
end

-- The link for WORD NUMBER, or nil: `word` is "step"/"Step" or "section"/"Section".
local function target_for(word, number)
  if word:lower() == "step" then
    if not number:match("^%d%d?$") then
      return nil
    end
    local target = step_targets[tostring(tonumber(number))]
    if target == nil or target == this_page then
      return nil
    end
    return local_target(target)
  end
  local target = section_targets[number]
  return target and local_target(target)
end

local function is_space(inline)
  return inline and (inline.t == "Space" or inline.t == "SoftBreak")
end

-- "(step" -> "(", "step"; a word that only ends in "step" (footstep) is not a mention.
local function split_word(text)
  local before, word = text:match("^(.-)([Ss]tep)$")
  if not word then
    before, word = text:match("^(.-)([Ss]ection)$")
  end
  if word and (before == "" or not before:match("[%w_-]$")) then
    return before, word
  end
end

-- "5," -> "5", ","; "5.2." -> "5.2", "."; nothing when more digits follow ("5.2x" is fine).
local function split_number(text, word)
  local patterns = word:lower() == "step" and {"^(%d+)(.*)$"} or {"^(%d+%.%d+%.%d+)(.*)$", "^(%d+%.%d+)(.*)$"}
  for _, pattern in ipairs(patterns) do
    local number, rest = text:match(pattern)
    if number and not rest:match("^%d") and not rest:match("^%.%d") then
      return number, rest
    end
  end
end

local function link_mentions(inlines)
  local out, i, changed = pandoc.List(), 1, false
  while i <= #inlines do
    local here, space, next = inlines[i], inlines[i + 1], inlines[i + 2]
    local done = false
    if here.t == "Str" and is_space(space) and next and next.t == "Str" then
      local before, word = split_word(here.text)
      local number, rest
      if word then
        number, rest = split_number(next.text, word)
      end
      local target = number and target_for(word, number)
      if target then
        if before ~= "" then
          out:insert(pandoc.Str(before))
        end
        out:insert(pandoc.Link({pandoc.Str(word), pandoc.Space(), pandoc.Str(number)}, target, "",
                               pandoc.Attr("", {"xref"})))
        if rest ~= "" then
          out:insert(pandoc.Str(rest))
        end
        i, done, changed = i + 3, true, true
      end
    end
    if not done then
      out:insert(here)
      i = i + 1
    end
  end
  if changed then
    return out
  end
end

-- A mention inside a link's own text stays that link's text.
local function no_nested_links(link)
  local content, changed = pandoc.List(), false
  for _, inline in ipairs(link.content) do
    if inline.t == "Link" then
      content:extend(inline.content)
      changed = true
    else
      content:insert(inline)
    end
  end
  if changed then
    link.content = content
    return link
  end
end

return {{Meta = read_tables}, {CodeBlock = CodeBlock, Inlines = link_mentions},
        {Link = no_nested_links}, {Pandoc = number_figures}}
