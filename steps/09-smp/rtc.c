/*
 * Wall-clock time, for the "created" field of API responses. The PC's real-time clock keeps
 * the date in the CMOS chip, read through ports 0x70/0x71. It is read once at boot; after
 * that the TSC clock counts the seconds.
 */
#include <stdbool.h>
#include <stdint.h>
#include "clock.h"
#include "kprintf.h"
#include "rtc.h"
#include "x86.h"

#define CMOS_INDEX 0x70
#define CMOS_DATA 0x71
#define REG_SECONDS 0x00
#define REG_MINUTES 0x02
#define REG_HOURS 0x04
#define REG_DAY 0x07
#define REG_MONTH 0x08
#define REG_YEAR 0x09
#define REG_STATUS_A 0x0A
#define REG_STATUS_B 0x0B
#define STATUS_A_UPDATING 0x80
#define STATUS_B_BINARY 0x04
#define STATUS_B_24_HOUR 0x02
#define HOUR_PM 0x80

static uint64_t boot_unix_time;

static uint8_t read_cmos(uint8_t reg)
{
    outb(CMOS_INDEX, reg);
    return inb(CMOS_DATA);
}

static uint8_t from_bcd(uint8_t value)
{
    return (uint8_t)((value >> 4) * 10 + (value & 0x0F));
}

/* Days since 1970-01-01 of a proleptic Gregorian date (years counted from March). */
static int64_t days_from_civil(int64_t year, int64_t month, int64_t day)
{
    int64_t era, year_of_era, day_of_year, day_of_era;

    year -= month <= 2;
    era = year / 400;
    year_of_era = year - era * 400;
    day_of_year = (153 * (month + (month > 2 ? -3 : 9)) + 2) / 5 + day - 1;
    day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    return era * 146097 + day_of_era - 719468;
}

static uint8_t read_field(uint8_t reg, bool binary)
{
    uint8_t value = read_cmos(reg);
    return binary ? value : from_bcd(value);
}

void rtc_init(void)
{
    uint8_t status_b, hours_raw;
    bool binary;
    int64_t hours;

    /* The clock's registers change during an update; wait until one is not in progress. */
    while (read_cmos(REG_STATUS_A) & STATUS_A_UPDATING)
        ;
    status_b = read_cmos(REG_STATUS_B);
    binary = status_b & STATUS_B_BINARY;
    hours_raw = read_cmos(REG_HOURS);
    hours = binary ? hours_raw & 0x7F : from_bcd(hours_raw & 0x7F);
    if (!(status_b & STATUS_B_24_HOUR))
        hours = hours % 12 + (hours_raw & HOUR_PM ? 12 : 0);
    /* The century register is not standard; this kernel assumes the 21st century. */
    boot_unix_time = (uint64_t)(days_from_civil(2000 + read_field(REG_YEAR, binary),
                                                read_field(REG_MONTH, binary),
                                                read_field(REG_DAY, binary)) * 86400 +
                                hours * 3600 + read_field(REG_MINUTES, binary) * 60 +
                                read_field(REG_SECONDS, binary));
    boot_unix_time -= clock_ms() / 1000;
    kprintf("rtc: unix time %lu\n", boot_unix_time + clock_ms() / 1000);
}

uint64_t rtc_unix_time(void)
{
    return boot_unix_time + clock_ms() / 1000;
}
