#pragma once

void ktest_run_requested(void);
