#pragma once

void smp_selftest_run(void);
