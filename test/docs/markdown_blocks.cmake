# Finds the fenced C++ blocks of Markdown pages. Included by CMakeLists.txt
# (configure time) and by check_samples.cmake (ctest).
#
# Page text is only ever held in variables and walked with string(FIND) and
# string(SUBSTRING). It is never a CMake list, which would split lines at `;` and
# treat `[` and `]` specially, and never a macro argument, since CMake substitutes
# macro arguments into the body as source text, where `\` and `${` would be
# evaluated again. Variables are passed by name for that reason.

cmake_policy(SET CMP0054 NEW) # quoted if() arguments are strings, never variables

# The fence lines the harness knows. "```cpp" opens a compiled sample;
# "```cpp synopsis" opens declarations copied from the headers (checked against
# them, not compiled); a line "```" closes either.
set(CARTESIA_SAMPLE_FENCE "```cpp")
set(CARTESIA_SYNOPSIS_FENCE "```cpp synopsis")

# Runs the macro named `callback` once per line of the text held in the variable
# named `text_var`, with the line (without "\n" or "\r\n") in `line` and its
# 1-based number in `line_number`.
macro(cartesia_for_each_line text_var callback)
    set(_cartesia_rest "${${text_var}}")
    set(line_number 0)
    while(NOT "${_cartesia_rest}" STREQUAL "")
        string(FIND "${_cartesia_rest}" "\n" _cartesia_newline)
        if(_cartesia_newline EQUAL -1)
            set(line "${_cartesia_rest}")
            set(_cartesia_rest "")
        else()
            string(SUBSTRING "${_cartesia_rest}" 0 ${_cartesia_newline} line)
            math(EXPR _cartesia_next "${_cartesia_newline} + 1")
            string(SUBSTRING "${_cartesia_rest}" ${_cartesia_next} -1 _cartesia_rest)
        endif()
        string(LENGTH "${line}" _cartesia_length)
        if(_cartesia_length GREATER 0)
            math(EXPR _cartesia_last "${_cartesia_length} - 1")
            string(SUBSTRING "${line}" ${_cartesia_last} 1 _cartesia_tail)
            if("${_cartesia_tail}" STREQUAL "\r")
                string(SUBSTRING "${line}" 0 ${_cartesia_last} line)
            endif()
        endif()
        math(EXPR line_number "${line_number} + 1")
        cmake_language(CALL ${callback})
    endwhile()
endmacro()

# Reads the page `md_file` and runs the macro named `on_block` once per C++ block,
# with `block_kind` ("sample" or "synopsis"), `block_text` (its lines, each ending
# in "\n") and `block_first_line` (the page's line number of its first line).
# Stops with an error on a block that is never closed.
macro(cartesia_for_each_cpp_block md_file on_block)
    file(READ "${md_file}" _cartesia_page)
    set(block_kind "")
    set(_cartesia_on_block ${on_block})
    cartesia_for_each_line(_cartesia_page _cartesia_on_page_line)
    if(NOT "${block_kind}" STREQUAL "")
        message(FATAL_ERROR "${md_file}:${block_first_line}: a C++ block is never closed")
    endif()
endmacro()

macro(_cartesia_on_page_line)
    if("${block_kind}" STREQUAL "")
        if("${line}" STREQUAL "${CARTESIA_SAMPLE_FENCE}")
            set(block_kind "sample")
        elseif("${line}" STREQUAL "${CARTESIA_SYNOPSIS_FENCE}")
            set(block_kind "synopsis")
        endif()
        if(NOT "${block_kind}" STREQUAL "")
            set(block_text "")
            math(EXPR block_first_line "${line_number} + 1")
        endif()
    elseif("${line}" STREQUAL "```")
        cmake_language(CALL ${_cartesia_on_block})
        set(block_kind "")
    else()
        string(APPEND block_text "${line}\n")
    endif()
endmacro()

# The stem of a sample's file name: the page's path below `source_dir` without
# ".md", "/" made "_" (README.md -> README, docs/errors.md -> docs_errors).
function(cartesia_page_stem source_dir md_file out_var)
    file(RELATIVE_PATH relative "${source_dir}" "${md_file}")
    string(REGEX REPLACE "\\.md$" "" relative "${relative}")
    string(REPLACE "/" "_" relative "${relative}")
    set(${out_var} "${relative}" PARENT_SCOPE)
endfunction()
