#pragma once

void memtest_run(void);
