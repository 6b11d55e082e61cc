<?php

namespace WHMCS\Module\Server\Pvekeep;

/**
 * The schedule card's form, posted to scheduleSave, as schedule.set's
 * fields: the zone picked ('' = the panel's, whose name goes along as
 * panel_timezone) and the seven days, each ticked or not with its time.
 * The plugin validates every value; a day that is not ticked and has no
 * time gets 00:00 (its time is never used, and the plugin wants one).
 */
final class ScheduleForm
{
    /** Contract day names, as schedule.set takes them. */
    private const DAYS = ['sun', 'mon', 'tue', 'wed', 'thu', 'fri', 'sat'];

    /**
     * @return array{timezone: string, panel_timezone: string, days: list<array{day: string, enabled: bool, time: string}>}
     */
    public static function fields(): array
    {
        $days = [];
        foreach (self::DAYS as $day) {
            $enabled = Input::post('pvekeep_day_' . $day) === '1';
            $time = trim(Input::post('pvekeep_time_' . $day));
            if (!$enabled && $time === '') {
                $time = '00:00';
            }
            $days[] = ['day' => $day, 'enabled' => $enabled, 'time' => $time];
        }
        return [
            'timezone' => trim(Input::post('pvekeep_timezone')),
            'panel_timezone' => date_default_timezone_get(),
            'days' => $days,
        ];
    }

    /**
     * What the client reads when schedule.set refused: a day's time or
     * the zone in words; anything else as every other form says it.
     */
    public static function error(Lang $lang, \Throwable $e): string
    {
        if ($e instanceof \PvekeepRpcException && $e->getReason() === 'invalid_input') {
            $field = (string) ($e->getData()['field'] ?? '');
            if (stripos($field, 'timezone') !== false) {
                return $lang->get('schedule.invalid_timezone');
            }
            if (stripos($field, 'time') !== false || stripos($field, 'day') !== false) {
                return $lang->get('schedule.invalid_time');
            }
        }
        return $lang->error($e);
    }
}
