/*
 * lab.S: lab_missing for the 32-bit assembly of step 01, where there is no C yet. A stubbed
 * routine jumps here with its message in %esi. The message goes to COM1 and to the top line
 * of the VGA screen, then QEMU's isa-debug-exit device ends the run with status 5, as
 * lab.h's lab_missing does for C.
 */
    .section .text
    .code32
    .global lab_missing32
lab_missing32:
    mov $0xB8000, %edi
1:  movzbl (%esi), %eax
    test %eax, %eax
    jz 3f
    mov $0x3FD, %dx
2:  inb %dx, %al
    test $0x20, %al
    jz 2b
    movzbl (%esi), %eax
    mov $0x3F8, %dx
    outb %al, %dx
    or $0x4F00, %eax
    mov %ax, (%edi)
    inc %esi
    add $2, %edi
    jmp 1b
3:  mov $'\n', %al
    mov $0x3F8, %dx
    outb %al, %dx
    mov $2, %al
    mov $0xF4, %dx
    outb %al, %dx
4:  cli
    hlt
    jmp 4b
