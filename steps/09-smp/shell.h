#pragma once

void shell_poll(void);
