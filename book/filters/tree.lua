-- tree.lua: pulls code, diffs and diagrams from the ringzero tree into the book,
-- so that the book can never show code the tree does not have.
--
-- book/build.py runs pandoc from the repository root: tree paths are relative to it.
-- Directives are attributes of an empty fenced code block:
--
--   include="PATH"                        the whole file
--   include="PATH" function="NAME"        one C function definition: from the line
--                                         naming it (at column 0) to the first "}" at
--                                         column 0, with the attribute lines and the
--                                         comment block right above
--   include="PATH" lines="/START/,/END/"  the first line matching START through the
--                                         next line matching END; START and END are
--                                         Perl regexes, as `grep -P` reads them (pandoc
--                                         drops a backslash before punctuation in an
--                                         attribute: write [(] or \\( for a literal "(")
--   stepdiff="NN-name" [file="NAME"]      `diff -u` of NAME (or of every file but the
--                                         MANIFEST) from the previous step to this one
--
-- An image whose source ends in ".dot" is a Graphviz diagram, looked up relative to
-- the chapter and rendered with `dot -Tsvg`.
-- Classes asm and gas become gnuassembler, the AT&T syntax the kernel is written in.
--
-- Every broken reference is reported as "chapter: directive: reason", then pandoc
-- exits with status 1, so a book with a dangling reference is never built.

local chapter = table.concat(PANDOC_STATE.input_files, ", ")
local chapter_dir = pandoc.path.directory(PANDOC_STATE.input_files[1])
local problems = {}

local DIRECTIVE_KEYS = {"include", "function", "lines", "stepdiff", "file"}
-- The student edition (build.py --student) reads a tree whose lab items are stubs: lines
-- quoted from inside a lab item's body are not there, and a note stands in their place.
local STUDENT = os.getenv("RINGZERO_EDITION") == "student"
local LEFT_OUT = "This excerpt is part of a lab, and is left out of the student edition."
local GAS_CLASSES = {asm = true, gas = true}

-- A broken reference unwinds to the block that made it, which records it.
local function fail(reason)
  error({reason = reason}, 0)
end

-- Runs a command; exit codes listed in `ok_codes` besides 0 are not errors
-- (diff exits 1 when files differ, grep exits 1 when nothing matches).
local function run(command, args, ok_codes)
  local ok, result = pcall(pandoc.pipe, command, args, "")
  if ok then
    return result
  end
  if type(result) == "table" and (ok_codes or {})[result.error_code] then
    return result.output
  end
  local status = type(result) == "table" and result.error_code or "?"
  local command_line = table.concat({command, table.unpack(args)}, " ")
  fail(string.format("`%s` exited with status %s", command_line, status))
end

local function is_file(path)
  return (pcall(pandoc.pipe, "test", {"-f", path}, ""))
end

local function read_file(path)
  if not is_file(path) then
    fail("no such file " .. path)
  end
  local f = io.open(path, "r")
  local text = f:read("a")
  f:close()
  return text
end

local function split_lines(text)
  local lines = {}
  for line in text:gmatch("([^\n]*)\n") do
    lines[#lines + 1] = line
  end
  if not text:match("\n$") and text ~= "" then
    lines[#lines + 1] = text:match("([^\n]*)$")
  end
  return lines
end

local function join_lines(lines, first, last)
  return table.concat(lines, "\n", first, last)
end

local function list_dir(path)
  local names = {}
  for name in run("ls", {"-A", path}):gmatch("[^\n]+") do
    names[#names + 1] = name
  end
  table.sort(names)
  return names
end

-- include="PATH" function="NAME" --------------------------------------------------

-- The comment block ending right above line `first`, as its first line number.
local function comment_above(lines, first)
  local i = first - 1
  if lines[i] and lines[i]:match("%*/%s*$") then
    while i > 1 and not lines[i]:find("/%*") do
      i = i - 1
    end
    return i
  end
  while lines[i] and lines[i]:match("^%s*//") do
    i = i - 1
  end
  return i + 1
end

-- A definition is named at column 0 and reaches a "{" before any ";",
-- which tells it from a prototype.
local function is_definition(lines, i, name)
  local line = lines[i]
  if not (line:match("^[%a_]") and line:find("%f[%w_]" .. name .. "%s*%(")) then
    return false
  end
  for j = i, #lines do
    if lines[j]:find("{", 1, true) then
      return true
    end
    if lines[j]:find(";", 1, true) then
      return false
    end
  end
  return false
end

-- Attribute lines right above the line naming the function belong to its declaration.
local function declaration_start(lines, i)
  while lines[i - 1] and lines[i - 1]:match("^__attribute__") do
    i = i - 1
  end
  return i
end

local function function_region(lines, name)
  if not name:match("^[%a_][%w_]*$") then
    fail("not a C identifier: " .. name)
  end
  for i = 1, #lines do
    if is_definition(lines, i, name) then
      for j = i + 1, #lines do
        if lines[j]:match("^}") then
          return comment_above(lines, declaration_start(lines, i)), j
        end
      end
      fail("function " .. name .. " has no closing brace at column 0")
    end
  end
  fail("no definition of function " .. name)
end

-- include="PATH" lines="/START/,/END/" --------------------------------------------

-- The first line after line `after` that matches `regex`.
local function first_match(path, regex, after)
  for match in run("grep", {"-nP", "--", regex, path}, {[1] = true}):gmatch("[^\n]+") do
    local number = tonumber(match:match("^(%d+):"))
    if number > after then
      return number
    end
  end
  fail("no line matches /" .. regex .. "/" .. (after > 0 and " after line " .. after or ""))
end

local function regex_region(path, spec)
  local start_re, end_re = spec:match("^/(.+)/,/(.+)/$")
  if not start_re then
    fail('lines= must look like "/START/,/END/"')
  end
  local first = first_match(path, start_re, 0)
  return first, first_match(path, end_re, first)
end

local function include(attrs)
  local path = attrs.include
  if path:match("^/") or path:match("%.%.") then
    fail("paths are relative to the repository root and stay inside it")
  end
  local lines = split_lines(read_file(path))
  if attrs["function"] and attrs.lines then
    fail("give function= or lines=, not both")
  end
  local first, last, what = 1, #lines, nil
  if attrs["function"] then
    first, last = function_region(lines, attrs["function"])
    what = attrs["function"] .. "()"
  elseif attrs.lines then
    first, last = regex_region(path, attrs.lines)
  end
  local label = path
  if what or first ~= 1 or last ~= #lines then
    label = string.format("%s%s, lines %d–%d", what and what .. " in " or "", path, first, last)
  end
  return join_lines(lines, first, last), label
end

-- stepdiff="NN-name" [file="NAME"] -------------------------------------------------

local function previous_step(step)
  local steps = list_dir("steps")
  for i, name in ipairs(steps) do
    if name == step then
      return steps[i - 1]
    end
  end
  fail("no step steps/" .. step)
end

-- A side of the diff that lacks the file is /dev/null, as in `git diff`.
local function side(step, file)
  local path = step and "steps/" .. step .. "/" .. file
  if path and is_file(path) then
    return path
  end
  return "/dev/null"
end

local function file_diff(old_step, new_step, file)
  local old, new = side(old_step, file), side(new_step, file)
  return run("diff", {"-u", "--label", old, "--label", new, old, new}, {[1] = true})
end

local function step_files(old_step, new_step)
  local seen, files = {}, {}
  local dirs = {"steps/" .. new_step, old_step and "steps/" .. old_step}
  for _, dir in ipairs(dirs) do
    for _, name in ipairs(list_dir(dir)) do
      if name ~= "MANIFEST" and not seen[name] then
        seen[name] = true
        files[#files + 1] = name
      end
    end
  end
  table.sort(files)
  return files
end

local function stepdiff(attrs)
  local step = attrs.stepdiff
  local old_step = previous_step(step)
  if attrs.file then
    if side(old_step, attrs.file) == "/dev/null" and side(step, attrs.file) == "/dev/null" then
      fail(attrs.file .. " is in neither step")
    end
    local diff = file_diff(old_step, step, attrs.file)
    if diff == "" then
      fail(attrs.file .. " did not change in this step")
    end
    return diff
  end
  local diffs = {}
  for _, file in ipairs(step_files(old_step, step)) do
    diffs[#diffs + 1] = file_diff(old_step, step, file)
  end
  return table.concat(diffs)
end

-- Blocks and images ----------------------------------------------------------------

local function describe(attrs)
  local parts = {}
  for _, key in ipairs(DIRECTIVE_KEYS) do
    if attrs[key] then
      parts[#parts + 1] = string.format('%s="%s"', key, attrs[key])
    end
  end
  return table.concat(parts, " ")
end

local function resolve(block, attrs)
  if block.text ~= "" then
    fail("a directive block must be empty: its code comes from the tree")
  end
  if attrs.include and attrs.stepdiff then
    fail("give include= or stepdiff=, not both")
  end
  if attrs.include then
    return include(attrs)
  end
  if attrs["function"] or attrs.lines then
    fail("function= and lines= need include=")
  end
  if attrs.file and not attrs.stepdiff then
    fail("file= needs stepdiff=")
  end
  return stepdiff(attrs)
end

local function highlight_classes(classes)
  local result = {}
  for i, class in ipairs(classes) do
    result[i] = GAS_CLASSES[class] and "gnuassembler" or class
  end
  return result
end

local function record(directive, err)
  if type(err) ~= "table" then
    error(err, 0)
  end
  problems[#problems + 1] = string.format("%s: %s: %s", chapter, directive, err.reason)
end

function CodeBlock(block)
  local attrs = {}
  for _, key in ipairs(DIRECTIVE_KEYS) do
    attrs[key] = block.attributes[key]
  end
  local classes = highlight_classes(block.classes)
  if describe(attrs) == "" then
    return pandoc.CodeBlock(block.text, pandoc.Attr(block.identifier, classes))
  end
  local ok, text, label = pcall(resolve, block, attrs)
  if not ok and STUDENT and type(text) == "table" and text.reason:match("^no line matches") then
    return pandoc.Para({pandoc.Emph({pandoc.Str(LEFT_OUT)})})
  end
  if not ok then
    record(describe(attrs), text)
    return nil
  end
  local code = pandoc.CodeBlock(text:gsub("\n$", ""), pandoc.Attr(block.identifier, classes))
  if not label then
    return code
  end
  return pandoc.Div({pandoc.Para({pandoc.Code(label)}), code}, pandoc.Attr("", {"listing"}))
end

local function render_diagram(img)
  local path = pandoc.path.join({chapter_dir, img.src})
  if not is_file(path) then
    fail("no such diagram " .. path)
  end
  local svg_name = img.src:gsub("%.dot$", ".svg")
  pandoc.mediabag.insert(svg_name, "image/svg+xml", run("dot", {"-Tsvg", path}))
  img.src = svg_name
  return img
end

function Image(img)
  if not img.src:match("%.dot$") then
    return nil
  end
  local ok, result = pcall(render_diagram, img)
  if not ok then
    record("diagram " .. img.src, result)
    return nil
  end
  return result
end

local function report(doc)
  if #problems > 0 then
    io.stderr:write(table.concat(problems, "\n"), "\n")
    os.exit(1)
  end
  return doc
end

return {{CodeBlock = CodeBlock, Image = Image}, {Pandoc = report}}
