# ctest `docs_samples`: the compiled samples are all the ```cpp blocks of the pages,
# no C++ block escapes compilation through a misspelt fence, and every line of a
# "```cpp synopsis" block is a line of a public header.
#
#   cmake -DSOURCE_DIR=<repo> -DSAMPLES_DIR=<dir> -DSYNOPSIS_DIR=<dir>
#         -DCOMPILED_SAMPLES=<n> -P check_samples.cmake
cmake_minimum_required(VERSION 3.20)
include(${CMAKE_CURRENT_LIST_DIR}/markdown_blocks.cmake)

# A function, not a macro: the text may quote a page, and a macro would evaluate
# its argument again.
set(problems 0)
function(problem text)
    message(SEND_ERROR "${text}")
    math(EXPR count "${problems} + 1")
    set(problems ${count} PARENT_SCOPE)
endfunction()

file(GLOB_RECURSE pages "${SOURCE_DIR}/docs/*.md")
list(SORT pages)
set(pages "${SOURCE_DIR}/README.md" ${pages})

# Counted with file(STRINGS), not with the line walker that extracted the samples:
# the two must agree.
set(fence_lines 0)
foreach(page IN LISTS pages)
    file(STRINGS "${page}" cpp_fences REGEX "^```cpp$")
    list(LENGTH cpp_fences count)
    math(EXPR fence_lines "${fence_lines} + ${count}")
    # "```c++", "```cpp " or "```cpp title" would be shown as C++ yet compiled by
    # no one: only the two known fences may open a C++ block.
    file(STRINGS "${page}" cpp_like REGEX "^[ \t]*(```|~~~)[ \t]*([cC]\\+\\+|[cC][pP][pP]|[cC][xX][xX]|[hH][pP][pP])")
    foreach(fence IN LISTS cpp_like)
        if(NOT fence STREQUAL CARTESIA_SAMPLE_FENCE AND NOT fence STREQUAL CARTESIA_SYNOPSIS_FENCE)
            problem("${page}: fence \"${fence}\": use exactly \"${CARTESIA_SAMPLE_FENCE}\" (compiled) or \"${CARTESIA_SYNOPSIS_FENCE}\"")
        endif()
    endforeach()
endforeach()

file(GLOB extracted "${SAMPLES_DIR}/*.cpp")
list(LENGTH extracted extracted_count)
message(STATUS "```cpp blocks in the pages: ${fence_lines}; extracted: ${extracted_count}; in docs_samples: ${COMPILED_SAMPLES}")
if(fence_lines EQUAL 0)
    problem("no ```cpp block in README.md or docs/")
endif()
if(NOT fence_lines EQUAL extracted_count OR NOT fence_lines EQUAL COMPILED_SAMPLES)
    problem("the pages have ${fence_lines} ```cpp blocks, but ${extracted_count} were extracted and ${COMPILED_SAMPLES} are compiled: rebuild (a page changed since configure) or fix the extraction")
endif()

# Every declaration line of the public headers, trimmed, once as written and once
# without a trailing comment, between newlines: a synopsis line must be one of them.
file(GLOB headers "${SOURCE_DIR}/include/cartesia/*.hpp")
set(header_lines "\n")
macro(collect_header_line)
    string(STRIP "${line}" trimmed)
    string(APPEND header_lines "${trimmed}\n")
    string(REGEX REPLACE "[ \t]+//.*$" "" uncommented "${trimmed}")
    string(APPEND header_lines "${uncommented}\n")
endmacro()
foreach(header IN LISTS headers)
    file(READ "${header}" header_text)
    cartesia_for_each_line(header_text collect_header_line)
endforeach()

macro(check_synopsis_line)
    if(line_number EQUAL 1)
        # "<page>:<line of the block's first line>", written by the extraction
        string(REGEX MATCH "^(.*):([0-9]+)$" origin "${line}")
        set(origin_page "${CMAKE_MATCH_1}")
        set(origin_line "${CMAKE_MATCH_2}")
    else()
        string(STRIP "${line}" trimmed)
        if(NOT "${trimmed}" STREQUAL "" AND NOT "${trimmed}" MATCHES "^//")
            string(FIND "${header_lines}" "\n${trimmed}\n" found)
            if(found EQUAL -1)
                math(EXPR page_line "${origin_line} + ${line_number} - 2")
                problem("${origin_page}:${page_line}: a synopsis line that no public header has: ${trimmed}")
            endif()
        endif()
    endif()
endmacro()
file(GLOB synopses "${SYNOPSIS_DIR}/*.txt")
foreach(synopsis IN LISTS synopses)
    file(READ "${synopsis}" synopsis_text)
    cartesia_for_each_line(synopsis_text check_synopsis_line)
endforeach()
list(LENGTH synopses synopsis_count)
message(STATUS "synopsis blocks checked against include/cartesia/*.hpp: ${synopsis_count}")

if(problems GREATER 0)
    message(FATAL_ERROR "${problems} problem(s) with the documentation's C++ blocks")
endif()
