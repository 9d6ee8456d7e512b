-- book.lua: the book's own presentation, after tree.lua has filled in the code.
-- book/build.py passes it a metadata table of pages (see build.py's link_tables).
--
--   long lines   a code line longer than WRAP columns (tabs at 8) is wrapped, and each
--                continuation starts with MARK, so that every listing fits the code column
--                (book.css sizes that column for 112 columns at a 1280-pixel window; the
--                tree is written at 100, so only pasted output ever wraps)

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

return {{CodeBlock = CodeBlock}}
