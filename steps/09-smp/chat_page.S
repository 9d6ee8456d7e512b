/*
 * The chat page that GET / serves, built into the kernel image: there is no file system to
 * read it from. chat_page_end - chat_page is its length.
 */
    .section .rodata
    .global chat_page, chat_page_end
chat_page:
    .incbin "chat_page.html"
chat_page_end:
